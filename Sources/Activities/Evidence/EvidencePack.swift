import Foundation
import WorkflowRuntime

/// A run's evidence as one JSON document: the run, its history, its approvals with their audit
/// trail (who, when, from where, note, payload SHA-256) and its provider calls (with the
/// providers' message ids), as records whose hashes chain: each record's `hash` is the SHA-256
/// of the previous record's hash and the record's own content, and `head` seals the chain with
/// the pack's header. ``verify(_:)`` recomputes every hash and names the first record that does
/// not match; a pack is written in one canonical form, so no byte can change unnoticed.
///
/// `worker evidence ID --out pack.json`, `worker evidence verify pack.json`.
public struct EvidencePack: Codable, Sendable, Hashable {
    public static let currentFormat = "keel-evidence/1"
    /// The previous hash of the first record.
    public static let genesis = String(repeating: "0", count: 64)

    public var format: String
    public var workflowID: String
    public var runID: String
    public var exportedAt: Date
    public var records: [EvidenceRecord]
    /// SHA-256 of the last record's hash and the header (format, workflow id, run id, export time).
    public var head: String

    /// Builds the pack of the latest run of `workflowID` (or of `runID`).
    public static func export(
        workflowID: String, client: WorkflowClient, ledger: OutboundLedger, now: Date = Date()
    ) async throws -> EvidencePack {
        let described = try await client.describe(workflowID: workflowID, includeHistory: true)
        let run = described.run
        var records: [(kind: String, summary: String, data: JSONValue)] = []
        records.append(("run", "\(run.workflowType) \(run.status.rawValue)", try JSONValue(encoding: run)))
        for event in described.history ?? [] {
            records.append(("history", "#\(event.id) \(event.kind.name)", try JSONValue(encoding: event)))
        }
        for approval in described.approvals {
            let (record, audit) = try await client.approval(approval.id)
            records.append(
                (
                    "approval",
                    "\(record.request.name) \(record.status.rawValue) sha256=\(record.request.payloadHash)",
                    try JSONValue(encoding: ApprovalEvidence(approval: record, audit: audit))
                ))
        }
        for call in try await ledger.outbox(runID: run.runID, limit: 10_000).reversed() {
            records.append(
                (
                    "providerCall",
                    "\(call.channel) \(call.operation) \(call.status) \(call.providerMessageID ?? "-")",
                    try JSONValue(encoding: call)
                ))
        }
        var chained: [EvidenceRecord] = []
        var previous = genesis
        for (index, record) in records.enumerated() {
            let sealed = try EvidenceRecord(
                index: index, kind: record.kind, summary: record.summary, data: record.data, previousHash: previous)
            chained.append(sealed)
            previous = sealed.hash
        }
        let exportedAt = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        return EvidencePack(
            format: currentFormat, workflowID: run.workflowID, runID: run.runID, exportedAt: exportedAt,
            records: chained,
            head: try Self.head(
                last: previous, format: currentFormat, workflowID: run.workflowID, runID: run.runID,
                exportedAt: exportedAt))
    }

    /// The pack in its one canonical form (sorted keys, ISO-8601 dates, pretty-printed).
    public func encoded() throws -> Data {
        try Self.encoder.encode(self)
    }

    /// Checks a pack: every record's hash and link, the head, and that the file is exactly the
    /// canonical form of what it holds. - Returns: the pack.
    /// - Throws: ``EvidenceError`` naming the first record that does not match.
    @discardableResult
    public static func verify(_ data: Data) throws -> EvidencePack {
        let pack: EvidencePack
        do { pack = try decoder.decode(EvidencePack.self, from: data) } catch {
            throw EvidenceError("not a Keel evidence pack: \(error.localizedDescription)")
        }
        guard pack.format == currentFormat else {
            throw EvidenceError("unknown evidence format '\(pack.format)' (this worker reads \(currentFormat))")
        }
        var previous = genesis
        for (position, record) in pack.records.enumerated() {
            guard record.index == position, record.previousHash == previous,
                try record.computedHash() == record.hash
            else {
                throw EvidenceError(
                    "record \(position) (\(record.kind): \(record.summary)) does not match its hash: the pack was "
                        + "changed after it was exported")
            }
            previous = record.hash
        }
        let head = try Self.head(
            last: previous, format: pack.format, workflowID: pack.workflowID, runID: pack.runID,
            exportedAt: pack.exportedAt)
        guard head == pack.head else {
            throw EvidenceError("the pack's head does not match its header and last record: it was changed")
        }
        var exact = try pack.encoded()
        exact.append(UInt8(ascii: "\n"))
        guard data == exact || data == exact.dropLast() else {
            throw EvidenceError("the file is not byte for byte the pack that was exported (its layout was changed)")
        }
        return pack
    }

    private static func head(last: String, format: String, workflowID: String, runID: String, exportedAt: Date)
        throws -> String
    {
        let header = try encoder.encode([format, workflowID, runID, exportedAt.formatted(.iso8601)])
        return sha256(Data("\(last)\n".utf8) + header)
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    static func sha256(_ data: Data) -> String { data.sha256Hex }
}

/// One hash-chained record of an ``EvidencePack``.
public struct EvidenceRecord: Codable, Sendable, Hashable {
    public var index: Int
    /// `run`, `history`, `approval` or `providerCall`.
    public var kind: String
    /// One line for people: the event, the approval's outcome and payload hash, the provider id.
    public var summary: String
    public var data: JSONValue
    public var previousHash: String
    /// SHA-256 of `previousHash`, a newline, and the canonical JSON of index, kind, summary and data.
    public var hash: String

    init(index: Int, kind: String, summary: String, data: JSONValue, previousHash: String) throws {
        self.index = index
        self.kind = kind
        self.summary = summary
        self.data = data
        self.previousHash = previousHash
        self.hash = ""
        self.hash = try computedHash()
    }

    func computedHash() throws -> String {
        let content = try EvidencePack.encoder.encode(
            JSONValue.object([
                "index": .number(Double(index)), "kind": .string(kind), "summary": .string(summary), "data": data,
            ]))
        return EvidencePack.sha256(Data("\(previousHash)\n".utf8) + content)
    }
}

/// An approval and its audit trail, as an evidence record holds them.
struct ApprovalEvidence: Encodable {
    var approval: ApprovalRecord
    var audit: [ApprovalAuditEntry]
}

/// An evidence pack that does not verify.
public struct EvidenceError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension JSONValue {
    /// `value` as JSON (dates ISO-8601), read back as a value.
    init(encoding value: some Encodable) throws {
        let data = try EvidencePack.encoder.encode(value)
        self = try EvidencePack.decoder.decode(JSONValue.self, from: data)
    }
}

/// `evidence.attach`: exports the calling run's evidence pack so far and files it in the
/// document store (`documents.upload`, through the gateway: shadow, it is kept in the outbox row).
public struct AttachEvidencePack: Activity {
    public static let name = "evidence.attach"

    public struct Input: Codable, Sendable {
        /// The document-store room (or folder) the pack goes to.
        public var roomID: String
        public init(roomID: String) { self.roomID = roomID }
    }

    public struct Output: Codable, Sendable, Hashable {
        public var head: String
        /// SHA-256 of the pack's canonical bytes, as filed.
        public var sha256: String
        public var records: Int
        public var receipt: ProviderReceipt
    }

    let database: WorkflowDatabase
    let gateway: OutboundGateway

    public init(database: WorkflowDatabase, gateway: OutboundGateway) {
        self.database = database
        self.gateway = gateway
    }

    public func run(context: ActivityContext, input: Input) async throws -> Output {
        let pack = try await EvidencePack.export(
            workflowID: context.workflowID, client: WorkflowClient(database: database), ledger: gateway.ledger,
            now: context.now)
        let data = try pack.encoded()
        let upload = DocumentUpload(
            roomID: input.roomID, name: "evidence-\(context.workflowID).json", contentSHA256: EvidencePack.sha256(data),
            content: String(decoding: data, as: UTF8.self))
        let receipt = try await gateway.perform("documents.upload", on: .documents, upload, context: context) {
            providers in
            try await providers.documents?.upload(upload, idempotencyKey: context.idempotencyKey)
        }
        return Output(head: pack.head, sha256: upload.contentSHA256, records: pack.records.count, receipt: receipt)
    }
}
