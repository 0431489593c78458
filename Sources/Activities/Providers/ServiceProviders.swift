import Foundation
import WorkflowRuntime

// The providers the business workflows call besides messaging: CRM, e-signature, document store
// and notifications. Each operation that changes something takes the activity's idempotency key
// (sent as `Idempotency-Key`) and returns the provider's id for what it created or changed.

/// The CRM: contacts, deal stages and notes.
public protocol CRMProvider: Sendable {
    func upsertContact(_ contact: CRMContact, idempotencyKey: String) async throws -> String?
    func setDealStage(_ change: DealStageChange, idempotencyKey: String) async throws -> String?
    func addNote(_ note: CRMNote, idempotencyKey: String) async throws -> String?
}

/// E-signature requests: created, polled, voided.
public protocol ESignatureProvider: Sendable {
    /// - Returns: the provider's id of the request.
    func createRequest(_ request: SignatureRequest, idempotencyKey: String) async throws -> String?
    func status(ofRequest requestID: String) async throws -> SignatureStatus
    func void(_ void: SignatureVoid, idempotencyKey: String) async throws -> String?
}

/// The document store: data rooms and their documents.
public protocol DocumentStoreProvider: Sendable {
    /// - Returns: the provider's id of the room.
    func createRoom(_ room: DataRoom, idempotencyKey: String) async throws -> String?
    func upload(_ document: DocumentUpload, idempotencyKey: String) async throws -> String?
    func archiveRoom(_ archive: RoomArchive, idempotencyKey: String) async throws -> String?
}

/// Notifications to the company's own people and roles (`role:legal`).
public protocol NotificationProvider: Sendable {
    func notify(_ notification: TeamNotification, idempotencyKey: String) async throws -> String?
}

public struct CRMContact: Codable, Sendable, Hashable {
    public var email: String
    public var name: String
    public var company: String?
    /// More fields, as the CRM names them.
    public var fields: [String: String]?

    public init(email: String, name: String, company: String? = nil, fields: [String: String]? = nil) {
        self.email = email
        self.name = name
        self.company = company
        self.fields = fields
    }
}

public struct DealStageChange: Codable, Sendable, Hashable {
    public var dealID: String
    /// The CRM's stage name, e.g. `negotiating`, `closed-won`, `closed-lost`.
    public var stage: String
    public var reason: String?

    public init(dealID: String, stage: String, reason: String? = nil) {
        self.dealID = dealID
        self.stage = stage
        self.reason = reason
    }
}

public struct CRMNote: Codable, Sendable, Hashable {
    public var dealID: String
    public var text: String

    public init(dealID: String, text: String) {
        self.dealID = dealID
        self.text = text
    }
}

public struct SignatureRequest: Codable, Sendable, Hashable {
    public struct Signer: Codable, Sendable, Hashable {
        public var name: String
        public var email: String
        public init(name: String, email: String) {
            self.name = name
            self.email = email
        }
    }

    public var documentName: String
    /// The SHA-256 of exactly what is to be signed (hex).
    public var documentSHA256: String
    public var signers: [Signer]
    public var expiresAt: Date?
    public var message: String?

    public init(
        documentName: String, documentSHA256: String, signers: [Signer], expiresAt: Date? = nil, message: String? = nil
    ) {
        self.documentName = documentName
        self.documentSHA256 = documentSHA256
        self.signers = signers
        self.expiresAt = expiresAt
        self.message = message
    }
}

/// Where a signature request stands, as the provider reports it.
public enum SignatureStatus: String, Codable, Sendable, Hashable, CaseIterable {
    case pending, signed, declined, expired, voided
}

public struct SignatureVoid: Codable, Sendable, Hashable {
    public var requestID: String
    public var reason: String

    public init(requestID: String, reason: String) {
        self.requestID = requestID
        self.reason = reason
    }
}

public struct DataRoom: Codable, Sendable, Hashable {
    public var name: String
    public var dealID: String
    /// Who may enter (e-mail addresses).
    public var members: [String]

    public init(name: String, dealID: String, members: [String] = []) {
        self.name = name
        self.dealID = dealID
        self.members = members
    }
}

public struct DocumentUpload: Codable, Sendable, Hashable {
    public var roomID: String
    public var name: String
    /// The document's SHA-256 (hex): what the room must hold.
    public var contentSHA256: String
    /// Where the store fetches the content from.
    public var sourceURL: String?
    /// Or the content itself, as text (an evidence pack, a rendered document).
    public var content: String?

    public init(
        roomID: String, name: String, contentSHA256: String, sourceURL: String? = nil, content: String? = nil
    ) {
        self.roomID = roomID
        self.name = name
        self.contentSHA256 = contentSHA256
        self.sourceURL = sourceURL
        self.content = content
    }
}

public struct RoomArchive: Codable, Sendable, Hashable {
    public var roomID: String
    public var reason: String

    public init(roomID: String, reason: String) {
        self.roomID = roomID
        self.reason = reason
    }
}

public struct TeamNotification: Codable, Sendable, Hashable {
    /// People (e-mail addresses or user ids) and roles (`role:legal`).
    public var recipients: [String]
    public var subject: String
    public var body: String

    public init(recipients: [String], subject: String, body: String) {
        self.recipients = recipients
        self.subject = subject
        self.body = body
    }
}

/// The CRM over its HTTP API: `POST /contacts`, `POST /deals/{id}/stage`, `POST /deals/{id}/notes`.
public struct HTTPCRMProvider: CRMProvider {
    let client: ProviderHTTPClient
    public init(client: ProviderHTTPClient) { self.client = client }

    public func upsertContact(_ contact: CRMContact, idempotencyKey: String) async throws -> String? {
        try await client.post("contacts", contact, idempotencyKey: idempotencyKey)
    }

    public func setDealStage(_ change: DealStageChange, idempotencyKey: String) async throws -> String? {
        try await client.post("deals/\(PathSegment(change.dealID))/stage", change, idempotencyKey: idempotencyKey)
    }

    public func addNote(_ note: CRMNote, idempotencyKey: String) async throws -> String? {
        try await client.post("deals/\(PathSegment(note.dealID))/notes", note, idempotencyKey: idempotencyKey)
    }
}

/// E-signature over its HTTP API: `POST /signature-requests`, `GET /signature-requests/{id}`
/// (its `status`), `POST /signature-requests/{id}/void`.
public struct HTTPESignatureProvider: ESignatureProvider {
    let client: ProviderHTTPClient
    public init(client: ProviderHTTPClient) { self.client = client }

    public func createRequest(_ request: SignatureRequest, idempotencyKey: String) async throws -> String? {
        try await client.post("signature-requests", request, idempotencyKey: idempotencyKey)
    }

    public func status(ofRequest requestID: String) async throws -> SignatureStatus {
        let answer = try await client.get("signature-requests/\(PathSegment(requestID))")
        guard let text = answer.fields["status"], let status = SignatureStatus(rawValue: text) else {
            throw ApplicationError(
                "\(client.name) reported the status '\(answer.fields["status"] ?? "(none)")' for signature request "
                    + "\(requestID) (expected \(SignatureStatus.allCases.map(\.rawValue).joined(separator: ", ")))",
                type: "ProviderAnswerInvalid")
        }
        return status
    }

    public func void(_ void: SignatureVoid, idempotencyKey: String) async throws -> String? {
        try await client.post(
            "signature-requests/\(PathSegment(void.requestID))/void", void, idempotencyKey: idempotencyKey)
    }
}

/// The document store over its HTTP API: `POST /rooms`, `POST /rooms/{id}/documents`,
/// `POST /rooms/{id}/archive`.
public struct HTTPDocumentStoreProvider: DocumentStoreProvider {
    let client: ProviderHTTPClient
    public init(client: ProviderHTTPClient) { self.client = client }

    public func createRoom(_ room: DataRoom, idempotencyKey: String) async throws -> String? {
        try await client.post("rooms", room, idempotencyKey: idempotencyKey)
    }

    public func upload(_ document: DocumentUpload, idempotencyKey: String) async throws -> String? {
        try await client.post(
            "rooms/\(PathSegment(document.roomID))/documents", document, idempotencyKey: idempotencyKey)
    }

    public func archiveRoom(_ archive: RoomArchive, idempotencyKey: String) async throws -> String? {
        try await client.post("rooms/\(PathSegment(archive.roomID))/archive", archive, idempotencyKey: idempotencyKey)
    }
}

/// Notifications over an HTTP API: `POST /notifications`.
public struct HTTPNotificationProvider: NotificationProvider {
    let client: ProviderHTTPClient
    public init(client: ProviderHTTPClient) { self.client = client }

    public func notify(_ notification: TeamNotification, idempotencyKey: String) async throws -> String? {
        try await client.post("notifications", notification, idempotencyKey: idempotencyKey)
    }
}

/// An id placed in a URL path, percent-encoded so that it stays one segment.
struct PathSegment: CustomStringConvertible {
    var value: String
    init(_ value: String) { self.value = value }
    var description: String {
        value.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/")))
            ?? value
    }
}
