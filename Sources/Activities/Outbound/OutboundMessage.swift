import Foundation
import WorkflowRuntime

/// A provider Keel's activities call: each is shadow (the outbox only) until configured live.
///
/// The four messaging channels reach people outside the company: their sends pass the
/// suppression list and the senders' daily limits. The emergency stop holds every channel.
public enum OutboundChannel: String, Codable, Sendable, Hashable, CaseIterable {
    case email
    case sms
    case whatsapp
    /// LinkedIn has no sending API: a "send" creates a task for a person (``SendStatus/manualRequired``).
    case linkedin
    /// The CRM: contacts, deal stages, notes.
    case crm
    /// E-signature requests.
    case esignature
    /// The document store: data rooms and their documents.
    case documents
    /// Notifications to the company's own people and roles.
    case notifications

    /// Whether the channel carries ``OutboundMessage``s to people (suppression and limits apply).
    public var isMessaging: Bool {
        switch self {
        case .email, .sms, .whatsapp, .linkedin: true
        case .crm, .esignature, .documents, .notifications: false
        }
    }
}

/// One message to one person, as rendered by the workflow: what the outbox records and the
/// provider receives.
public struct OutboundMessage: Codable, Sendable, Hashable {
    public var channel: OutboundChannel
    /// Who sends: an e-mail address (its domain is the sender counted against limits), a phone
    /// number, a LinkedIn seat.
    public var from: String
    /// An e-mail address, a phone number in E.164, a LinkedIn profile URL.
    public var to: String
    /// The e-mail's subject; `nil` on other channels.
    public var subject: String?
    public var body: String
    /// The template the body was rendered from, for the record.
    public var template: String?

    public init(
        channel: OutboundChannel, from: String, to: String, subject: String? = nil, body: String,
        template: String? = nil
    ) {
        self.channel = channel
        self.from = from
        self.to = to
        self.subject = subject
        self.body = body
        self.template = template
    }

    /// The sender counted against the channel's daily limit: an e-mail's sending domain, else `from`.
    public var sender: String {
        channel == .email ? Recipient.domain(of: from) ?? from.lowercased() : from
    }

    /// Checks what a send needs: a recipient and sender that are not empty, an e-mail address
    /// with a domain, a subject on e-mail.
    /// - Throws: ``InvalidValueError`` naming the field (the send fails at once, not retried).
    public func validate() throws {
        guard channel.isMessaging else {
            throw InvalidValueError(
                name: "message channel", value: channel.rawValue, requirement: "email, sms, whatsapp or linkedin")
        }
        for (name, value) in [("to", to), ("from", from), ("body", body)]
        where value.trimmingCharacters(in: .whitespaces).isEmpty {
            throw InvalidValueError(name: "message \(name)", value: "\"\"", requirement: "not empty")
        }
        if channel == .email {
            for (name, value) in [("to", to), ("from", from)] where Recipient.domain(of: value) == nil {
                throw InvalidValueError(
                    name: "e-mail \(name)", value: value, requirement: "an address of the form name@domain")
            }
            guard subject.map({ !$0.isEmpty }) ?? false else {
                throw InvalidValueError(name: "e-mail subject", value: "nil", requirement: "a subject")
            }
        }
    }
}

/// What became of a send.
public enum SendStatus: String, Codable, Sendable, Hashable {
    /// Recorded in the outbox only: the channel is in shadow mode.
    case shadowed
    /// Accepted by the provider (``SendReceipt/providerMessageID`` is its id).
    case sent
    /// A person has a task to do it by hand (LinkedIn).
    case manualRequired
    /// Not sent: the recipient (or their domain) is on the suppression list.
    case suppressed
}

/// The result of a send activity, kept in the run's history.
public struct SendReceipt: Codable, Sendable, Hashable {
    public var status: SendStatus
    /// The activity's idempotency key: the outbox row's key and the `Idempotency-Key` sent.
    public var idempotencyKey: String
    /// The provider's id of the message, when it was sent live.
    public var providerMessageID: String?
    /// Why it was suppressed, when it was.
    public var detail: String?

    public init(status: SendStatus, idempotencyKey: String, providerMessageID: String? = nil, detail: String? = nil) {
        self.status = status
        self.idempotencyKey = idempotencyKey
        self.providerMessageID = providerMessageID
        self.detail = detail
    }
}

/// How addresses are compared on the suppression list.
public enum Recipient {
    /// The address as the suppression list keys it: trimmed and lowercased (a phone number or
    /// profile URL as well as an e-mail address).
    public static func normalized(_ address: String) -> String {
        address.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }

    /// The lowercased domain of an e-mail address (`Ann@Example.com` → `example.com`), or `nil`.
    public static func domain(of address: String) -> String? {
        let parts = normalized(address).split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."),
            !parts[1].hasSuffix(".")
        else { return nil }
        return String(parts[1])
    }

    /// The suppression-list keys that block `address`: itself, and `@domain` for an e-mail address.
    static func suppressionKeys(for address: String) -> [String] {
        let address = normalized(address)
        return [address] + (domain(of: address).map { ["@\($0)"] } ?? [])
    }
}
