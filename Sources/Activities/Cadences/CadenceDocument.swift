import Foundation
import WorkflowRuntime

/// An outreach cadence as data: which message goes out on which day, on which channel, under
/// which conditions, and what ends it. Operators register versions without a rebuild
/// (`worker cadence register FILE`); a running cadence keeps the version it started with.
public struct CadenceDocument: Codable, Sendable, Hashable {
    public var id: String
    /// Registered versions of one id are kept side by side; a new one needs a higher number.
    public var version: Int
    public var name: String?
    public var steps: [CadenceStep]
    /// The day the cadence closes when nothing ended it earlier.
    public var closeOnDay: Int
    /// The signals that end it at once (default: reply, unsubscribe, bounce).
    public var exitOn: [ExitSignal]?

    public init(
        id: String, version: Int, name: String? = nil, steps: [CadenceStep], closeOnDay: Int,
        exitOn: [ExitSignal]? = nil
    ) {
        self.id = id
        self.version = version
        self.name = name
        self.steps = steps
        self.closeOnDay = closeOnDay
        self.exitOn = exitOn
    }

    /// A signal that ends a cadence.
    public enum ExitSignal: String, Codable, Sendable, Hashable, CaseIterable {
        case reply, unsubscribe, bounce
    }

    /// The signals that end it.
    public var exits: [ExitSignal] { exitOn ?? ExitSignal.allCases }

    /// Parses and checks a document.
    /// - Throws: ``CadenceError`` naming the bad step and field (`steps[3].subject: ...`).
    public static func parse(_ data: Data) throws -> CadenceDocument {
        let document: CadenceDocument
        do { document = try JSONDecoder().decode(CadenceDocument.self, from: data) } catch let error as DecodingError {
            throw CadenceError(error)
        } catch {
            throw CadenceError(path: nil, "not a JSON cadence document: \(error.localizedDescription)")
        }
        try document.validate()
        return document
    }

    /// Checks the document can run.
    /// - Throws: ``CadenceError`` naming the bad step and field.
    public func validate() throws {
        guard !id.isEmpty, id.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw CadenceError(path: "id", "must be letters, digits, '-', '_' or '.', got \"\(id)\"")
        }
        guard (1...1_000_000).contains(version) else {
            throw CadenceError(path: "version", "must be from 1 to 1000000, got \(version)")
        }
        guard !steps.isEmpty, steps.count <= 100 else {
            throw CadenceError(path: "steps", "must hold from 1 to 100 steps, got \(steps.count)")
        }
        var previousDay = 1
        for (index, step) in steps.enumerated() {
            let path = "steps[\(index)]"
            guard (1...365).contains(step.day) else {
                throw CadenceError(path: "\(path).day", "must be from 1 to 365, got \(step.day)")
            }
            guard step.day >= previousDay else {
                throw CadenceError(path: "\(path).day", "is \(step.day), before the previous step's day \(previousDay)")
            }
            previousDay = step.day
            guard step.channel.isMessaging else {
                throw CadenceError(path: "\(path).channel", "must be email, sms, whatsapp or linkedin")
            }
            if step.channel == .email, (step.subject ?? "").isEmpty {
                throw CadenceError(path: "\(path).subject", "is required for an e-mail step")
            }
            guard !step.body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw CadenceError(path: "\(path).body", "must not be empty")
            }
            guard !step.template.isEmpty else { throw CadenceError(path: "\(path).template", "must not be empty") }
        }
        guard (previousDay...366).contains(closeOnDay) else {
            throw CadenceError(
                path: "closeOnDay", "must be from the last step's day (\(previousDay)) to 366, got \(closeOnDay)")
        }
    }

    /// SHA-256 of the document's canonical JSON: what a registered version is compared by.
    public var sha256: String {
        ((try? JSONEncoder.keel.encode(self)) ?? Data()).sha256Hex
    }

    /// The default 21-day cadence: e-mails on days 1, 5, 10 and 17 (the break-up), LinkedIn on
    /// days 2 (connection, with a profile URL), 7 (message, once connected) and 14 (follow-up),
    /// closing on day 21.
    public static let outreach21 = CadenceDocument(
        id: "outreach-21", version: 1, name: "21-day outreach",
        steps: [
            CadenceStep(
                day: 1, channel: .email, template: "intro", subject: "{{company}} and Keel",
                body: "Hi {{firstName}}, a short note about how teams like {{company}} run deals with Keel."),
            CadenceStep(
                day: 2, channel: .linkedin, template: "connect", body: "Hi {{firstName}}, glad to connect.",
                conditions: [.hasLinkedInURL]),
            CadenceStep(
                day: 5, channel: .email, template: "value", subject: "A 21-day cadence, without the scripts",
                body: "Hi {{firstName}}, here is what a durable cadence looks like for {{company}}."),
            CadenceStep(
                day: 7, channel: .linkedin, template: "message", body: "Thanks for connecting, {{firstName}}.",
                conditions: [.hasLinkedInURL, .linkedInConnected]),
            CadenceStep(
                day: 10, channel: .email, template: "case-study", subject: "How a deal desk cut its chasing",
                body: "Hi {{firstName}}, a case study you may find useful."),
            CadenceStep(
                day: 14, channel: .linkedin, template: "follow-up", body: "Any thoughts, {{firstName}}?",
                conditions: [.hasLinkedInURL]),
            CadenceStep(
                day: 17, channel: .email, template: "break-up", subject: "Closing the loop",
                body: "Hi {{firstName}}, I will stop writing after this one."),
        ],
        closeOnDay: 21)
}

/// One message of a cadence.
public struct CadenceStep: Codable, Sendable, Hashable {
    /// The cadence's day it goes out on (day 1 is the day the cadence starts).
    public var day: Int
    public var channel: OutboundChannel
    public var template: String
    /// The e-mail's subject (`{{firstName}}`, `{{company}}` are filled in).
    public var subject: String?
    public var body: String
    /// All must hold, or the step is skipped.
    public var conditions: [Condition]?

    public init(
        day: Int, channel: OutboundChannel, template: String, subject: String? = nil, body: String,
        conditions: [Condition]? = nil
    ) {
        self.day = day
        self.channel = channel
        self.template = template
        self.subject = subject
        self.body = body
        self.conditions = conditions
    }

    /// What a step may require.
    public enum Condition: String, Codable, Sendable, Hashable, CaseIterable {
        /// The lead has a LinkedIn profile URL.
        case hasLinkedInURL
        /// The `linkedin-connected` signal came.
        case linkedInConnected
    }
}

/// A cadence document that cannot be used: names the step and field.
public struct CadenceError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `steps[3].subject`, `closeOnDay`, or `nil` for the whole document.
    public var path: String?
    public var message: String

    public init(path: String?, _ message: String) {
        self.path = path
        self.message = message
    }

    init(_ error: DecodingError) {
        func path(_ codingPath: [any CodingKey]) -> String? {
            guard !codingPath.isEmpty else { return nil }
            return codingPath.reduce("") { text, key in
                if let index = key.intValue { return "\(text)[\(index)]" }
                return text.isEmpty ? key.stringValue : "\(text).\(key.stringValue)"
            }
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context.codingPath)
            self.init(path: parent.map { "\($0).\(key.stringValue)" } ?? key.stringValue, "is required")
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            self.init(path: path(context.codingPath), "has the wrong type: \(context.debugDescription)")
        case .dataCorrupted(let context):
            self.init(path: path(context.codingPath), context.debugDescription)
        @unknown default:
            self.init(path: nil, "\(error)")
        }
    }

    public var description: String { path.map { "\($0): \(message)" } ?? message }
}
