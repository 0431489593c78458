import Foundation

/// Limits on the durations Keel accepts, and conversions that check them.
///
/// Every duration that comes from outside — a workflow's input, activity options, a CLI flag, a
/// stored row — is checked or clamped where it enters, so no value (NaN, infinity, 1e308, a
/// negative lease) can trap the arithmetic of a worker. The policy:
///
/// - Values a person or a workflow chose (timers, timeouts, retry intervals, leases, flags) are
///   *checked*: out of range is an error naming the value, never a silent change. Inside workflow
///   code the error is thrown to the code (``InvalidValueError``; uncaught, it fails the run).
/// - Values the engine reads back or derives (stored options, the time to the next timer, a
///   backoff computed from a huge attempt count) are *clamped* to ``Duration/longestAccepted``.
extension Duration {
    /// The longest timer, timeout, retry interval or lease Keel accepts: 100 years (as Temporal's
    /// timers). A point in time further ahead than this is refused too.
    public static let longestAccepted: Duration = .seconds(100 * 365 * 86_400)

    /// `seconds` as a duration, if it is a finite number between 0 (or just above it, unless
    /// `allowsZero`) and ``longestAccepted``.
    ///
    /// ```swift
    /// let deadline = try Duration.checked(seconds: input.deadlineSeconds, "deadlineSeconds", allowsZero: false)
    /// ```
    /// - Parameter name: what the value is, for the error message (an input field, a flag).
    /// - Throws: ``InvalidValueError`` naming `name`, the value and the accepted range.
    public static func checked(seconds: Double, _ name: String, allowsZero: Bool = true) throws -> Duration {
        let longest = longestAccepted.seconds
        let inRange = allowsZero ? (seconds >= 0 && seconds <= longest) : (seconds > 0 && seconds <= longest)
        guard inRange else {  // NaN compares false, so it lands here too
            throw InvalidValueError(
                name: name, value: "\(seconds)",
                requirement: "\(allowsZero ? "from 0" : "more than 0") to \(Int(longest)) seconds (100 years)")
        }
        return saturating(seconds: seconds)
    }

    /// Checks a duration chosen by code or configuration against the same range as ``checked(seconds:_:allowsZero:)``.
    /// - Throws: ``InvalidValueError``.
    public func checked(_ name: String, allowsZero: Bool = true) throws -> Duration {
        guard (allowsZero ? self >= .zero : self > .zero), self <= Duration.longestAccepted else {
            throw InvalidValueError(
                name: name, value: "\(self)",
                requirement: "\(allowsZero ? "from 0" : "more than 0") to 100 years")
        }
        return self
    }

    /// `value` seconds, clamped to `0...longestAccepted` (NaN becomes zero). For values the engine
    /// reads back or derives; it never traps.
    static func saturating(seconds value: Double) -> Duration {
        guard value > 0 else { return .zero }
        let seconds = min(value, longestAccepted.seconds)
        let whole = seconds.rounded(.down)
        return .seconds(Int64(whole)) + .nanoseconds(Int64(((seconds - whole) * 1e9).rounded()))
    }

    /// This duration, at most ``longestAccepted``.
    var clampedToLongestAccepted: Duration { Swift.min(self, Duration.longestAccepted) }
}

/// A number or duration from outside that Keel cannot use: it names the value and what would be
/// accepted. Thrown into workflow code it is not retryable, and an uncaught one fails the run
/// (its type in history is `InvalidValue`).
public struct InvalidValueError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What the value is: an input field, an option, a flag.
    public var name: String
    /// The value as given.
    public var value: String
    /// What would be accepted.
    public var requirement: String

    public init(name: String, value: String, requirement: String) {
        self.name = name
        self.value = value
        self.requirement = requirement
    }

    public var description: String { "\(name) must be \(requirement), got \(value)" }
}
