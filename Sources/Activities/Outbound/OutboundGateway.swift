import Foundation
import WorkflowRuntime

/// The one way a message leaves: every send passes the same checks, in this order, right before
/// it would leave, across all workers (the ledger's transaction decides them together):
///
/// 1. the outbox row of the activity's idempotency key is written (once, whatever the retries);
///    a key already shadowed, sent or suppressed answers as it did the first time;
/// 2. the emergency stop: while it is on the send waits (a retry delay of
///    ``OutboundConfiguration/emergencyStopRecheck``) — nothing is dropped, nothing leaves;
/// 3. the suppression list (the address, and its domain for e-mail): a suppressed recipient is
///    never sent to, and the receipt says ``SendStatus/suppressed``;
/// 4. the sender's daily limit in its zone, counted with the send's record: over it, the send
///    waits for the sender's next midnight (a retry delay, not a failure);
/// 5. shadow mode ends here (``SendStatus/shadowed``); live mode hands the message to the
///    channel's provider with the idempotency key and records the provider's message id.
public struct OutboundGateway: Sendable {
    public let ledger: OutboundLedger
    public let configuration: OutboundConfiguration
    private let providers: [OutboundChannel: any MessageProvider]

    /// A gateway whose live channels use the HTTP providers of `configuration`, their credentials
    /// read from `environment`.
    /// - Throws: ``ConfigurationError`` when a live channel's credential variable is not set.
    public init(
        database: WorkflowDatabase, configuration: OutboundConfiguration,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws {
        if let problem = configuration.problems(in: environment).first {
            throw ConfigurationError(key: nil, problem)
        }
        var providers: [OutboundChannel: any MessageProvider] = [:]
        for (channel, settings) in configuration.channels where settings.mode == .live {
            guard let baseURL = settings.baseURL else { continue }  // the file's check requires it
            let client = ProviderHTTPClient(
                name: "\(channel.rawValue) provider", baseURL: baseURL,
                credential: settings.credentialVariable.flatMap { environment[$0] }, timeout: settings.timeout)
            providers[channel] = channel.httpProvider(client)
        }
        try self.init(ledger: OutboundLedger(database: database), configuration: configuration, providers: providers)
    }

    /// A gateway with the given providers for its live channels (a team's own provider clients).
    /// - Throws: ``ConfigurationError`` when a live channel has no provider.
    public init(
        ledger: OutboundLedger, configuration: OutboundConfiguration, providers: [OutboundChannel: any MessageProvider]
    ) throws {
        for (channel, settings) in configuration.channels where settings.mode == .live && providers[channel] == nil {
            throw ConfigurationError(
                key: "channels.\(channel.rawValue).mode", "is live but the channel has no provider")
        }
        self.ledger = ledger
        self.configuration = configuration
        self.providers = providers
    }

    /// Sends `message` under the activity's idempotency key, after the safety checks.
    /// - Throws: ``InvalidValueError`` for a message that cannot be sent (not retried);
    ///   ``ApplicationError`` `EmergencyStop` or `DailyLimitReached` with the delay to wait
    ///   (retried then); the provider's errors.
    public func send(_ message: OutboundMessage, context: ActivityContext) async throws -> SendReceipt {
        try message.validate()
        let settings = configuration.channel(message.channel)
        let zone = settings.zone(for: message.sender)
        let now = context.now
        let day = SenderDay(of: now, in: zone)
        let key = context.idempotencyKey
        let provider = settings.mode == .live ? providers[message.channel] : nil
        let attempt = OutboundLedger.Attempt(
            idempotencyKey: key, message: message, workflowID: context.workflowID, runID: context.runID,
            mode: provider == nil ? .shadow : .live, dailyLimit: settings.dailyLimit(for: message.sender, on: day),
            day: day, now: now)
        switch try await ledger.admit(attempt) {
        case .done(let receipt):
            return receipt
        case .held(let reason):
            throw ApplicationError(
                "the emergency stop is on (\(reason)): the send waits until `worker emergency-stop off`",
                type: "EmergencyStop", nextRetryDelay: configuration.emergencyStopRecheck)
        case .overLimit(let limit):
            let nextDay = day.nextStart(in: zone)
            throw ApplicationError(
                "\(message.sender) reached its daily limit of \(limit) \(message.channel.rawValue) sends on \(day) "
                    + "(\(zone.identifier)): the send waits until \(nextDay.formatted(.iso8601))",
                type: "DailyLimitReached",
                nextRetryDelay: .milliseconds(Int64(max(1, nextDay.timeIntervalSince(now) + 1) * 1000)))
        case .deliver:
            guard let provider else { throw KeelError(.storage, "a shadow send was admitted as live") }
            do {
                let messageID = try await provider.deliver(message, idempotencyKey: key)
                let status: OutboxStatus = message.channel == .linkedin ? .manualRequired : .sent
                try await ledger.complete(key, status: status, providerMessageID: messageID, now: context.now)
                return SendReceipt(
                    status: status.sendStatus ?? .sent, idempotencyKey: key, providerMessageID: messageID)
            } catch let error as ApplicationError where error.nonRetryable {
                try await ledger.complete(key, status: .failed, detail: error.message, now: context.now)
                throw error
            }
        }
    }
}

/// Sends one message through the ``OutboundGateway``: the activity every workflow's e-mail, SMS,
/// WhatsApp and LinkedIn step calls.
///
/// Its deferrals (emergency stop, daily limit) are retries, so give it a retry policy without
/// `maximumAttempts` (the default) or a limit high enough to outlast them.
public struct SendMessage: Activity {
    public static let name = "outbound.send"

    let gateway: OutboundGateway

    public init(gateway: OutboundGateway) {
        self.gateway = gateway
    }

    public func run(context: ActivityContext, input: OutboundMessage) async throws -> SendReceipt {
        try await gateway.send(input, context: context)
    }
}

extension WorkflowRegistry {
    /// Registers the send activities (``SendMessage``).
    public mutating func registerOutboundActivities(gateway: OutboundGateway) {
        register(SendMessage(gateway: gateway))
    }
}
