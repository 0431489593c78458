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
    private let providers: OutboundProviders

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
        try self.init(
            ledger: OutboundLedger(database: database), configuration: configuration,
            providers: .http(configuration, environment: environment))
    }

    /// A gateway with the given providers for its live channels (a team's own provider clients).
    /// - Throws: ``ConfigurationError`` when a live channel has no provider.
    public init(ledger: OutboundLedger, configuration: OutboundConfiguration, providers: OutboundProviders) throws {
        for (channel, settings) in configuration.channels where settings.mode == .live && !providers.serves(channel) {
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
        let day = SenderDay(of: context.now, in: zone)
        let provider = settings.mode == .live ? providers.messages[message.channel] : nil
        let attempt = OutboundLedger.Attempt(
            idempotencyKey: context.idempotencyKey, channel: message.channel, operation: "send",
            sender: message.sender, recipient: message.to, body: try Self.json(message),
            workflowID: context.workflowID, runID: context.runID, mode: provider == nil ? .shadow : .live,
            dailyLimit: settings.dailyLimit(for: message.sender, on: day), day: day, now: context.now)
        let finalStatus: OutboxStatus = message.channel == .linkedin ? .manualRequired : .sent
        let outcome = try await decide(attempt, zone: zone, finalStatus: finalStatus, context: context) {
            try await provider?.deliver(message, idempotencyKey: context.idempotencyKey)
        }
        switch outcome {
        case .recorded(let receipt): return receipt
        case .delivered(let id):
            return SendReceipt(
                status: finalStatus.sendStatus ?? .sent, idempotencyKey: context.idempotencyKey, providerMessageID: id)
        }
    }

    /// Performs one provider operation that changes something (`crm.upsert-contact`) under the
    /// activity's idempotency key: recorded in the outbox once, held by the emergency stop, and
    /// passed to the channel's provider only in live mode.
    public func perform<Body: Encodable & Sendable>(
        _ operation: String, on channel: OutboundChannel, _ body: Body, context: ActivityContext,
        live: @Sendable (OutboundProviders) async throws -> String?
    ) async throws -> ProviderReceipt {
        let settings = configuration.channel(channel)
        let isLive = settings.mode == .live && providers.serves(channel)
        let attempt = OutboundLedger.Attempt(
            idempotencyKey: context.idempotencyKey, channel: channel, operation: operation, sender: nil,
            recipient: nil, body: try Self.json(body), workflowID: context.workflowID, runID: context.runID,
            mode: isLive ? .live : .shadow, dailyLimit: nil, day: SenderDay(of: context.now, in: .gmt),
            now: context.now)
        let providers = self.providers
        switch try await decide(
            attempt, zone: .gmt, finalStatus: .sent, context: context,
            deliver: {
                try await live(providers)
            })
        {
        case .recorded(let receipt):
            return ProviderReceipt(
                status: receipt.status == .shadowed ? .shadowed : .performed, idempotencyKey: receipt.idempotencyKey,
                providerID: receipt.providerMessageID)
        case .delivered(let id):
            return ProviderReceipt(status: .performed, idempotencyKey: context.idempotencyKey, providerID: id)
        }
    }

    /// The providers of the channels in live mode (`nil` in shadow mode: nothing to ask).
    public func liveProviders(for channel: OutboundChannel) -> OutboundProviders? {
        configuration.channel(channel).mode == .live && providers.serves(channel) ? providers : nil
    }

    private enum Outcome {
        case recorded(SendReceipt)
        case delivered(String?)
    }

    /// Runs the ledger's checks and, if they let the call leave, `deliver`, recording its answer.
    private func decide(
        _ attempt: OutboundLedger.Attempt, zone: TimeZone, finalStatus: OutboxStatus, context: ActivityContext,
        deliver: () async throws -> String?
    ) async throws -> Outcome {
        let key = attempt.idempotencyKey
        switch try await ledger.admit(attempt) {
        case .done(let receipt):
            return .recorded(receipt)
        case .held(let reason):
            throw ApplicationError(
                "the emergency stop is on (\(reason)): the \(attempt.channel.rawValue) call waits until "
                    + "`worker emergency-stop off`",
                type: "EmergencyStop", nextRetryDelay: configuration.emergencyStopRecheck)
        case .overLimit(let limit):
            let nextDay = attempt.day.nextStart(in: zone)
            throw ApplicationError(
                "\(attempt.sender ?? "the sender") reached its daily limit of \(limit) \(attempt.channel.rawValue) "
                    + "sends on \(attempt.day) (\(zone.identifier)): the send waits until "
                    + nextDay.formatted(.iso8601),
                type: "DailyLimitReached",
                nextRetryDelay: .milliseconds(Int64(max(1, nextDay.timeIntervalSince(attempt.now) + 1) * 1000)))
        case .deliver:
            do {
                let id = try await deliver()
                try await ledger.complete(key, status: finalStatus, providerMessageID: id, now: context.now)
                return .delivered(id)
            } catch let error as ApplicationError where error.nonRetryable {
                try await ledger.complete(key, status: .failed, detail: error.message, now: context.now)
                throw error
            }
        }
    }

    private static func json(_ value: some Encodable) throws -> String {
        String(decoding: try JSONEncoder.keel.encode(value), as: UTF8.self)
    }
}

/// The provider clients of the live channels.
public struct OutboundProviders: Sendable {
    public var messages: [OutboundChannel: any MessageProvider]
    public var crm: (any CRMProvider)?
    public var esignature: (any ESignatureProvider)?
    public var documents: (any DocumentStoreProvider)?
    public var notifications: (any NotificationProvider)?

    public init(
        messages: [OutboundChannel: any MessageProvider] = [:], crm: (any CRMProvider)? = nil,
        esignature: (any ESignatureProvider)? = nil, documents: (any DocumentStoreProvider)? = nil,
        notifications: (any NotificationProvider)? = nil
    ) {
        self.messages = messages
        self.crm = crm
        self.esignature = esignature
        self.documents = documents
        self.notifications = notifications
    }

    /// The HTTP providers of `configuration`'s live channels.
    public static func http(_ configuration: OutboundConfiguration, environment: [String: String]) -> OutboundProviders
    {
        var providers = OutboundProviders()
        for (channel, settings) in configuration.channels where settings.mode == .live {
            guard let baseURL = settings.baseURL else { continue }  // the file's check requires it
            let client = ProviderHTTPClient(
                name: "\(channel.rawValue) provider", baseURL: baseURL,
                credential: settings.credential(in: environment), timeout: settings.timeout)
            switch channel {
            case .email, .sms, .whatsapp, .linkedin: providers.messages[channel] = channel.httpMessageProvider(client)
            case .crm: providers.crm = HTTPCRMProvider(client: client)
            case .esignature: providers.esignature = HTTPESignatureProvider(client: client)
            case .documents: providers.documents = HTTPDocumentStoreProvider(client: client)
            case .notifications: providers.notifications = HTTPNotificationProvider(client: client)
            }
        }
        return providers
    }

    /// Whether a provider serves `channel`.
    public func serves(_ channel: OutboundChannel) -> Bool {
        switch channel {
        case .email, .sms, .whatsapp, .linkedin: messages[channel] != nil
        case .crm: crm != nil
        case .esignature: esignature != nil
        case .documents: documents != nil
        case .notifications: notifications != nil
        }
    }
}

/// The result of a provider operation, kept in the run's history.
public struct ProviderReceipt: Codable, Sendable, Hashable {
    public enum Status: String, Codable, Sendable, Hashable {
        /// Recorded in the outbox only: the channel is in shadow mode.
        case shadowed
        /// Done by the provider.
        case performed
    }

    public var status: Status
    /// The activity's idempotency key: the outbox row's key and the `Idempotency-Key` sent.
    public var idempotencyKey: String
    /// The provider's id of what it created or changed (a signature request, a room).
    public var providerID: String?

    public init(status: Status, idempotencyKey: String, providerID: String? = nil) {
        self.status = status
        self.idempotencyKey = idempotencyKey
        self.providerID = providerID
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
    /// Registers the activities that talk to the world: ``SendMessage`` and the CRM,
    /// e-signature, document-store and notification operations, all through `gateway`.
    public mutating func registerOutboundActivities(gateway: OutboundGateway) {
        register(SendMessage(gateway: gateway))
        register(UpsertCRMContact(gateway: gateway))
        register(SetCRMDealStage(gateway: gateway))
        register(AddCRMNote(gateway: gateway))
        register(CreateSignatureRequest(gateway: gateway))
        register(SignatureRequestStatus(gateway: gateway))
        register(VoidSignatureRequest(gateway: gateway))
        register(CreateDataRoom(gateway: gateway))
        register(UploadDocument(gateway: gateway))
        register(ArchiveDataRoom(gateway: gateway))
        register(NotifyTeam(gateway: gateway))
    }
}
