import Foundation
import WorkflowRuntime

/// How the send activities reach each channel: shadow or live, the provider's address and
/// credentials, and each sender's daily limit in its own time zone.
///
/// Read from one JSON file (`KEEL_CONFIG=keel.json worker run`; `worker config check FILE`
/// validates it). Every channel is shadow unless the file says `"mode": "live"`:
///
/// ```json
/// {
///   "emergencyStopRecheckSeconds": 60,
///   "channels": {
///     "email": {
///       "mode": "live",
///       "baseURL": "https://mail.example.net/v1",
///       "credentialVariable": "KEEL_EMAIL_API_KEY",
///       "timeoutSeconds": 10,
///       "dailyLimit": 50,
///       "timeZone": "Australia/Sydney",
///       "senders": {
///         "new-domain.example": {
///           "dailyLimit": 200,
///           "warmup": { "start": "2027-01-04", "initialLimit": 10, "dailyIncrease": 10 }
///         }
///       }
///     },
///     "sms": { "dailyLimit": 100 }
///   }
/// }
/// ```
///
/// The credential is read from the named environment variable (`credentialVariable`) or file
/// (`credentialFile`, e.g. a mounted secret) and sent as `Authorization: Bearer …`; it is never
/// written to a log, a history event or an error.
public struct OutboundConfiguration: Sendable, Hashable {
    public var channels: [OutboundChannel: ChannelConfiguration]
    /// How long a send waits before looking again while the emergency stop is on.
    public var emergencyStopRecheck: Duration

    public init(channels: [OutboundChannel: ChannelConfiguration] = [:], emergencyStopRecheck: Duration = .seconds(60))
    {
        self.channels = channels
        self.emergencyStopRecheck = emergencyStopRecheck
    }

    /// Every channel in shadow mode, without limits: what a worker runs with no file.
    public static let shadow = OutboundConfiguration()

    /// A channel's configuration (shadow, without limits, where the file says nothing).
    public func channel(_ channel: OutboundChannel) -> ChannelConfiguration {
        channels[channel] ?? ChannelConfiguration()
    }

    /// Reads and validates the file at `path`.
    /// - Throws: ``ConfigurationError`` naming the file and the bad key.
    public static func load(path: String) throws -> OutboundConfiguration {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ConfigurationError(
                key: nil, "cannot read the configuration file '\(path)': \(error.localizedDescription)")
        }
        return try parse(data)
    }

    /// Parses and validates a configuration document.
    /// - Throws: ``ConfigurationError`` naming the bad key (`channels.email.mode`) and what it must be.
    public static func parse(_ data: Data) throws -> OutboundConfiguration {
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data) } catch {
            throw ConfigurationError(key: nil, "the configuration is not valid JSON: \(error.localizedDescription)")
        }
        var reader = try ConfigurationReader(root, key: nil)
        var configuration = OutboundConfiguration()
        if let seconds = try reader.number("emergencyStopRecheckSeconds", in: 1...86_400) {
            configuration.emergencyStopRecheck = .milliseconds(Int64((seconds * 1000).rounded()))
        }
        if var channels = try reader.object("channels") {
            for name in channels.keys {
                guard let channel = OutboundChannel(rawValue: name) else {
                    let known = OutboundChannel.allCases.map(\.rawValue).joined(separator: ", ")
                    throw ConfigurationError(key: channels.path(name), "unknown channel (channels are \(known))")
                }
                if var entry = try channels.object(name) {
                    configuration.channels[channel] = try ChannelConfiguration(&entry)
                    try entry.finish()
                }
            }
            try channels.finish()
        }
        try reader.finish()
        return configuration
    }

    /// Problems the file cannot show by itself: a live channel whose credential variable is not
    /// set in `environment`, or whose credential file cannot be read (the worker refuses to start).
    public func problems(in environment: [String: String]) -> [String] {
        channels.sorted { $0.key.rawValue < $1.key.rawValue }.compactMap { channel, configuration in
            guard configuration.mode == .live else { return nil }
            if let variable = configuration.credentialVariable, environment[variable]?.isEmpty ?? true {
                return "channels.\(channel.rawValue).credentialVariable: \(variable) is not set in the environment"
            }
            if let file = configuration.credentialFile, configuration.credential(in: environment) == nil {
                return "channels.\(channel.rawValue).credentialFile: cannot read a credential from '\(file)'"
            }
            return nil
        }
    }
}

/// One channel's mode, provider and limits.
public struct ChannelConfiguration: Sendable, Hashable {
    /// Whether sends reach the provider.
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        /// Written to the outbox only (the default).
        case shadow
        /// Written to the outbox, then sent to the provider.
        case live
    }

    public var mode: Mode
    /// The provider's API root; required in live mode.
    public var baseURL: URL?
    /// The environment variable that holds the provider's credential (never the credential itself).
    public var credentialVariable: String?
    /// Or a file that holds it (a trailing newline is ignored), e.g. a mounted secret.
    public var credentialFile: String?
    /// How long one request to the provider may take before it is retried.
    public var timeout: Duration
    /// Sends per sender per day (in the sender's zone); `nil` is unlimited.
    public var dailyLimit: Int?
    /// The IANA zone whose midnight starts a sender's day.
    public var timeZone: String
    /// Per-sender overrides, keyed by sender (an e-mail domain, a number, a seat).
    public var senders: [String: SenderConfiguration]

    public init(
        mode: Mode = .shadow, baseURL: URL? = nil, credentialVariable: String? = nil, credentialFile: String? = nil,
        timeout: Duration = .seconds(10), dailyLimit: Int? = nil, timeZone: String = "UTC",
        senders: [String: SenderConfiguration] = [:]
    ) {
        self.mode = mode
        self.baseURL = baseURL
        self.credentialVariable = credentialVariable
        self.credentialFile = credentialFile
        self.timeout = timeout
        self.dailyLimit = dailyLimit
        self.timeZone = timeZone
        self.senders = senders
    }

    /// The provider's credential: the variable's value in `environment`, or the file's content.
    public func credential(in environment: [String: String]) -> String? {
        if let variable = credentialVariable { return environment[variable].flatMap { $0.isEmpty ? nil : $0 } }
        guard let credentialFile, let data = FileManager.default.contents(atPath: credentialFile) else { return nil }
        var text = String(decoding: data, as: UTF8.self)
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        return text.isEmpty ? nil : text
    }

    /// The zone of `sender`'s day.
    public func zone(for sender: String) -> TimeZone {
        let identifier = senders[sender]?.timeZone ?? timeZone
        return TimeZone(identifier: identifier) ?? .gmt  // validated when the file was read
    }

    /// How many sends `sender` may make on `day` (its calendar day), or `nil` for no limit.
    public func dailyLimit(for sender: String, on day: SenderDay) -> Int? {
        let configured = senders[sender]?.dailyLimit ?? dailyLimit
        guard let warmup = senders[sender]?.warmup else { return configured }
        guard day >= warmup.start else { return 0 }  // the ramp has not begun: nothing may leave yet
        // Both bounded by the file's checks (a million, and days within a few thousand years).
        let limit = warmup.initialLimit + warmup.dailyIncrease * min(day.number - warmup.start.number, 1_000_000)
        return configured.map { min($0, limit) } ?? limit
    }

    fileprivate init(_ reader: inout ConfigurationReader) throws {
        self.init()
        if let mode = try reader.string("mode") {
            guard let parsed = Mode(rawValue: mode) else {
                throw ConfigurationError(key: reader.path("mode"), "must be shadow or live, got \"\(mode)\"")
            }
            self.mode = parsed
        }
        if let text = try reader.string("baseURL") {
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""),
                url.host != nil
            else {
                throw ConfigurationError(key: reader.path("baseURL"), "must be an http or https URL, got \"\(text)\"")
            }
            guard url.user == nil, url.password == nil else {
                throw ConfigurationError(
                    key: reader.path("baseURL"),
                    "must not hold credentials: name an environment variable in credentialVariable")
            }
            baseURL = url
        }
        if let variable = try reader.string("credentialVariable") {
            guard !variable.isEmpty, variable.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw ConfigurationError(
                    key: reader.path("credentialVariable"),
                    "must be an environment variable's name (letters, digits, _), not a credential")
            }
            credentialVariable = variable
        }
        credentialFile = try reader.string("credentialFile")
        if credentialVariable != nil, credentialFile != nil {
            throw ConfigurationError(
                key: reader.path("credentialFile"), "name either credentialVariable or credentialFile, not both")
        }
        if let seconds = try reader.number("timeoutSeconds", in: 0.001...600) {
            timeout = .milliseconds(Int64((seconds * 1000).rounded()))
        }
        dailyLimit = try reader.integer("dailyLimit", in: 0...1_000_000)
        if let zone = try reader.timeZone("timeZone") { timeZone = zone }
        if var senders = try reader.object("senders") {
            for sender in senders.keys {
                guard var entry = try senders.object(sender) else { continue }
                self.senders[sender] = try SenderConfiguration(&entry)
                try entry.finish()
            }
            try senders.finish()
        }
        if mode == .live, baseURL == nil {
            throw ConfigurationError(key: reader.path("baseURL"), "is required when the mode is live")
        }
    }
}

/// One sender's own limit, zone and warm-up ramp.
public struct SenderConfiguration: Sendable, Hashable {
    public var dailyLimit: Int?
    public var timeZone: String?
    public var warmup: Warmup?

    public init(dailyLimit: Int? = nil, timeZone: String? = nil, warmup: Warmup? = nil) {
        self.dailyLimit = dailyLimit
        self.timeZone = timeZone
        self.warmup = warmup
    }

    fileprivate init(_ reader: inout ConfigurationReader) throws {
        self.init()
        dailyLimit = try reader.integer("dailyLimit", in: 0...1_000_000)
        timeZone = try reader.timeZone("timeZone")
        if var entry = try reader.object("warmup") {
            guard let start = try entry.day("start") else {
                throw ConfigurationError(key: entry.path("start"), "is required (the ramp's first day, YYYY-MM-DD)")
            }
            warmup = Warmup(
                start: start, initialLimit: try entry.integer("initialLimit", in: 0...1_000_000) ?? 0,
                dailyIncrease: try entry.integer("dailyIncrease", in: 0...1_000_000) ?? 0)
            try entry.finish()
        }
    }
}

/// A new sender's ramp: `initialLimit` on its first day, `dailyIncrease` more each day after,
/// never above the sender's daily limit.
public struct Warmup: Sendable, Hashable {
    public var start: SenderDay
    public var initialLimit: Int
    public var dailyIncrease: Int

    public init(start: SenderDay, initialLimit: Int, dailyIncrease: Int) {
        self.start = start
        self.initialLimit = initialLimit
        self.dailyIncrease = dailyIncrease
    }
}

/// A calendar day in a sender's zone (`2027-01-15`): the unit of daily limits.
public struct SenderDay: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Days since 1970-01-01.
    public let number: Int

    /// The day `YYYY-MM-DD`, or `nil` if `text` is not one.
    public init?(_ text: String) {
        guard text.count == 10, let date = try? Date("\(text)T00:00:00Z", strategy: .iso8601) else { return nil }
        number = Int((date.timeIntervalSince1970 / 86_400).rounded(.down))
    }

    /// The day `date` falls on in `zone`.
    public init(of date: Date, in zone: TimeZone) {
        let local = date.timeIntervalSince1970 + Double(zone.secondsFromGMT(for: date))
        number = Int((local / 86_400).rounded(.down))
    }

    /// The instant the next day begins in `zone`: its local midnight (or, where a daylight-saving
    /// change skips midnight, the first instant after it).
    public func nextStart(in zone: TimeZone) -> Date {
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = .gmt
        var local = utc
        local.timeZone = zone
        let next = Date(timeIntervalSince1970: Double(number + 1) * 86_400)
        let day = utc.dateComponents([.year, .month, .day], from: next)
        return local.date(from: day) ?? next.addingTimeInterval(-Double(zone.secondsFromGMT(for: next)))
    }

    public static func < (lhs: SenderDay, rhs: SenderDay) -> Bool { lhs.number < rhs.number }

    /// `YYYY-MM-DD`.
    public var description: String {
        Date(timeIntervalSince1970: Double(number) * 86_400).formatted(.iso8601.year().month().day())
    }
}

/// A configuration file that cannot be used: names the key and what it must be.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The bad key's path, e.g. `channels.email.mode` (`nil` for the whole file).
    public var key: String?
    public var message: String

    public init(key: String?, _ message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { key.map { "\($0): \(message)" } ?? message }
}

/// Reads one JSON object of the file, remembering which keys were read so that a misspelt key
/// is refused rather than ignored.
private struct ConfigurationReader {
    private let values: [String: Any]
    private let prefix: String?
    private var read: Set<String> = []

    init(_ value: Any, key: String?) throws {
        guard let object = value as? [String: Any] else {
            throw ConfigurationError(key: key, "must be a JSON object")
        }
        values = object
        prefix = key
    }

    var keys: [String] { values.keys.sorted() }

    func path(_ key: String) -> String { prefix.map { "\($0).\(key)" } ?? key }

    private mutating func value(_ key: String) -> Any? {
        read.insert(key)
        guard let value = values[key], !(value is NSNull) else { return nil }
        return value
    }

    mutating func object(_ key: String) throws -> ConfigurationReader? {
        guard let value = value(key) else { return nil }
        return try ConfigurationReader(value, key: path(key))
    }

    mutating func string(_ key: String) throws -> String? {
        guard let value = value(key) else { return nil }
        guard let string = value as? String else { throw ConfigurationError(key: path(key), "must be a string") }
        return string
    }

    mutating func number(_ key: String, in range: ClosedRange<Double>) throws -> Double? {
        guard let value = value(key) else { return nil }
        // JSONSerialization hands `true` back as an NSNumber of type char ("c"), never a number's type.
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c",
            number.doubleValue.isFinite, range.contains(number.doubleValue)
        else {
            throw ConfigurationError(key: path(key), "must be a number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number.doubleValue
    }

    mutating func integer(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let number = try number(key, in: Double(range.lowerBound)...Double(range.upperBound)) else { return nil }
        guard number.rounded() == number else {
            throw ConfigurationError(key: path(key), "must be a whole number, got \(number)")
        }
        return Int(number)
    }

    mutating func timeZone(_ key: String) throws -> String? {
        guard let identifier = try string(key) else { return nil }
        guard TimeZone(identifier: identifier) != nil else {
            throw ConfigurationError(
                key: path(key), "unknown time zone \"\(identifier)\" (an IANA name such as Australia/Sydney)")
        }
        return identifier
    }

    mutating func day(_ key: String) throws -> SenderDay? {
        guard let text = try string(key) else { return nil }
        guard let day = SenderDay(text) else {
            throw ConfigurationError(key: path(key), "must be a day as YYYY-MM-DD, got \"\(text)\"")
        }
        return day
    }

    /// Refuses any key that was not read: a typo must not silently leave a channel unlimited.
    func finish() throws {
        if let unknown = values.keys.sorted().first(where: { !read.contains($0) }) {
            throw ConfigurationError(key: path(unknown), "unknown key")
        }
    }
}
