import Foundation
import WorkflowRuntime

/// Hands one message to a channel's provider. The send activity calls it only for a live channel,
/// after the outbound safety checks passed, with the activity's idempotency key.
public protocol MessageProvider: Sendable {
    /// Delivers `message`. - Returns: the provider's id for it, if it gave one.
    /// - Throws: ``ApplicationError``: retryable (with a `nextRetryDelay` from `Retry-After`) or
    ///   not, as the provider answered.
    func deliver(_ message: OutboundMessage, idempotencyKey: String) async throws -> String?
}

/// E-mail over a provider's HTTP API: `POST {baseURL}/emails`.
public struct HTTPEmailProvider: MessageProvider {
    let client: ProviderHTTPClient
    public init(client: ProviderHTTPClient) { self.client = client }

    public func deliver(_ message: OutboundMessage, idempotencyKey: String) async throws -> String? {
        try await client.post(
            "emails",
            ProviderMessage(from: message.from, to: message.to, subject: message.subject, body: message.body),
            idempotencyKey: idempotencyKey)
    }
}

/// SMS over a provider's HTTP API: `POST {baseURL}/sms`.
public struct HTTPSMSProvider: MessageProvider {
    let client: ProviderHTTPClient
    public init(client: ProviderHTTPClient) { self.client = client }

    public func deliver(_ message: OutboundMessage, idempotencyKey: String) async throws -> String? {
        try await client.post(
            "sms", ProviderMessage(from: message.from, to: message.to, body: message.body),
            idempotencyKey: idempotencyKey)
    }
}

/// WhatsApp over a business-messaging provider's HTTP API: `POST {baseURL}/whatsapp/messages`.
public struct HTTPWhatsAppProvider: MessageProvider {
    let client: ProviderHTTPClient
    public init(client: ProviderHTTPClient) { self.client = client }

    public func deliver(_ message: OutboundMessage, idempotencyKey: String) async throws -> String? {
        try await client.post(
            "whatsapp/messages", ProviderMessage(from: message.from, to: message.to, body: message.body),
            idempotencyKey: idempotencyKey)
    }
}

/// LinkedIn, by hand: LinkedIn offers no sending API, so the "send" creates a task for the seat's
/// owner in a task system (`POST {baseURL}/tasks`) and the receipt says ``SendStatus/manualRequired``.
public struct HTTPLinkedInTaskProvider: MessageProvider {
    let client: ProviderHTTPClient
    public init(client: ProviderHTTPClient) { self.client = client }

    public func deliver(_ message: OutboundMessage, idempotencyKey: String) async throws -> String? {
        try await client.post(
            "tasks",
            ProviderMessage(
                from: message.from, to: message.to, subject: message.subject ?? "LinkedIn: \(message.to)",
                body: message.body),
            idempotencyKey: idempotencyKey)
    }
}

/// The JSON a message provider receives.
struct ProviderMessage: Encodable {
    var from: String
    var to: String
    var subject: String?
    var body: String
}

extension OutboundChannel {
    /// The HTTP provider of this messaging channel (`nil` for the other channels).
    func httpMessageProvider(_ client: ProviderHTTPClient) -> (any MessageProvider)? {
        switch self {
        case .email: HTTPEmailProvider(client: client)
        case .sms: HTTPSMSProvider(client: client)
        case .whatsapp: HTTPWhatsAppProvider(client: client)
        case .linkedin: HTTPLinkedInTaskProvider(client: client)
        case .crm, .esignature, .documents, .notifications: nil
        }
    }
}
