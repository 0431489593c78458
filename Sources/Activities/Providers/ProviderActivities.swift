import Foundation
import WorkflowRuntime

/// An activity that performs one provider operation through the ``OutboundGateway``: recorded in
/// the outbox under the activity's idempotency key, held by the emergency stop, and sent to the
/// provider only when its channel is live.
public protocol ProviderOperation: Activity where Output == ProviderReceipt {
    static var channel: OutboundChannel { get }
    var gateway: OutboundGateway { get }
    /// Calls the live provider.
    static func call(_ providers: OutboundProviders, _ input: Input, idempotencyKey: String) async throws -> String?
}

extension ProviderOperation {
    public func run(context: ActivityContext, input: Input) async throws -> ProviderReceipt {
        let key = context.idempotencyKey
        return try await gateway.perform(Self.name, on: Self.channel, input, context: context) { providers in
            try await Self.call(providers, input, idempotencyKey: key)
        }
    }
}

/// `crm.upsert-contact`.
public struct UpsertCRMContact: ProviderOperation {
    public static let name = "crm.upsert-contact"
    public static let channel = OutboundChannel.crm
    public typealias Input = CRMContact
    public let gateway: OutboundGateway
    public init(gateway: OutboundGateway) { self.gateway = gateway }
    public static func call(_ providers: OutboundProviders, _ input: CRMContact, idempotencyKey: String)
        async throws -> String?
    {
        try await providers.crm?.upsertContact(input, idempotencyKey: idempotencyKey)
    }
}

/// `crm.set-deal-stage` (e.g. `closed-lost`, a compensation).
public struct SetCRMDealStage: ProviderOperation {
    public static let name = "crm.set-deal-stage"
    public static let channel = OutboundChannel.crm
    public typealias Input = DealStageChange
    public let gateway: OutboundGateway
    public init(gateway: OutboundGateway) { self.gateway = gateway }
    public static func call(_ providers: OutboundProviders, _ input: DealStageChange, idempotencyKey: String)
        async throws -> String?
    {
        try await providers.crm?.setDealStage(input, idempotencyKey: idempotencyKey)
    }
}

/// `crm.add-note`.
public struct AddCRMNote: ProviderOperation {
    public static let name = "crm.add-note"
    public static let channel = OutboundChannel.crm
    public typealias Input = CRMNote
    public let gateway: OutboundGateway
    public init(gateway: OutboundGateway) { self.gateway = gateway }
    public static func call(_ providers: OutboundProviders, _ input: CRMNote, idempotencyKey: String)
        async throws -> String?
    {
        try await providers.crm?.addNote(input, idempotencyKey: idempotencyKey)
    }
}

/// `esignature.create-request`: the receipt's provider id is the request's.
public struct CreateSignatureRequest: ProviderOperation {
    public static let name = "esignature.create-request"
    public static let channel = OutboundChannel.esignature
    public typealias Input = SignatureRequest
    public let gateway: OutboundGateway
    public init(gateway: OutboundGateway) { self.gateway = gateway }
    public static func call(_ providers: OutboundProviders, _ input: SignatureRequest, idempotencyKey: String)
        async throws -> String?
    {
        try await providers.esignature?.createRequest(input, idempotencyKey: idempotencyKey)
    }
}

/// `esignature.void` (a compensation).
public struct VoidSignatureRequest: ProviderOperation {
    public static let name = "esignature.void"
    public static let channel = OutboundChannel.esignature
    public typealias Input = SignatureVoid
    public let gateway: OutboundGateway
    public init(gateway: OutboundGateway) { self.gateway = gateway }
    public static func call(_ providers: OutboundProviders, _ input: SignatureVoid, idempotencyKey: String)
        async throws -> String?
    {
        try await providers.esignature?.void(input, idempotencyKey: idempotencyKey)
    }
}

/// `esignature.status`: the provider's status of a request (a poll; nothing is recorded). In
/// shadow mode nothing was sent, so a request stays `pending` and the workflow relies on signals.
public struct SignatureRequestStatus: Activity {
    public static let name = "esignature.status"
    let gateway: OutboundGateway
    public init(gateway: OutboundGateway) { self.gateway = gateway }

    public func run(context: ActivityContext, input requestID: String) async throws -> SignatureStatus {
        guard let provider = gateway.liveProviders(for: .esignature)?.esignature else { return .pending }
        return try await provider.status(ofRequest: requestID)
    }
}

/// `documents.create-room`: the receipt's provider id is the room's.
public struct CreateDataRoom: ProviderOperation {
    public static let name = "documents.create-room"
    public static let channel = OutboundChannel.documents
    public typealias Input = DataRoom
    public let gateway: OutboundGateway
    public init(gateway: OutboundGateway) { self.gateway = gateway }
    public static func call(_ providers: OutboundProviders, _ input: DataRoom, idempotencyKey: String)
        async throws -> String?
    {
        try await providers.documents?.createRoom(input, idempotencyKey: idempotencyKey)
    }
}

/// `documents.upload`.
public struct UploadDocument: ProviderOperation {
    public static let name = "documents.upload"
    public static let channel = OutboundChannel.documents
    public typealias Input = DocumentUpload
    public let gateway: OutboundGateway
    public init(gateway: OutboundGateway) { self.gateway = gateway }
    public static func call(_ providers: OutboundProviders, _ input: DocumentUpload, idempotencyKey: String)
        async throws -> String?
    {
        try await providers.documents?.upload(input, idempotencyKey: idempotencyKey)
    }
}

/// `documents.archive-room` (a compensation).
public struct ArchiveDataRoom: ProviderOperation {
    public static let name = "documents.archive-room"
    public static let channel = OutboundChannel.documents
    public typealias Input = RoomArchive
    public let gateway: OutboundGateway
    public init(gateway: OutboundGateway) { self.gateway = gateway }
    public static func call(_ providers: OutboundProviders, _ input: RoomArchive, idempotencyKey: String)
        async throws -> String?
    {
        try await providers.documents?.archiveRoom(input, idempotencyKey: idempotencyKey)
    }
}

/// `notifications.notify`: to people and roles of the company.
public struct NotifyTeam: ProviderOperation {
    public static let name = "notifications.notify"
    public static let channel = OutboundChannel.notifications
    public typealias Input = TeamNotification
    public let gateway: OutboundGateway
    public init(gateway: OutboundGateway) { self.gateway = gateway }
    public static func call(_ providers: OutboundProviders, _ input: TeamNotification, idempotencyKey: String)
        async throws -> String?
    {
        try await providers.notifications?.notify(input, idempotencyKey: idempotencyKey)
    }
}
