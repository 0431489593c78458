import Foundation
import WorkflowRuntime

/// The registered cadence documents of a workflow database (table `cadences`, every version
/// kept). The built-in ``CadenceDocument/outreach21`` is there without registration.
public struct CadenceLibrary: Sendable {
    private let driver: any SQLDriver

    /// - Throws: ``KeelError`` `.invalidArgument` for a database that is not Keel's SQL store.
    public init(database: WorkflowDatabase) throws {
        guard let store = database.store as? SQLWorkflowStore else {
            throw KeelError(.invalidArgument, "cadences need a Keel SQLite or PostgreSQL database")
        }
        driver = store.driver
    }

    /// Registers a version. Registering the same version again with the same content changes
    /// nothing. - Returns: whether it was new.
    /// - Throws: ``CadenceError`` for an invalid document; ``KeelError`` `.invalidArgument` when the
    ///   version exists with other content (give the new one a higher version).
    @discardableResult
    public func register(_ document: CadenceDocument, now: Date = Date()) async throws -> Bool {
        try document.validate()
        let canonical = try JSONEncoder.keel.encode(document)
        let text = String(decoding: canonical, as: UTF8.self)
        let sha = canonical.sha256Hex  // = document.sha256, from the bytes already encoded
        return try await driver.write { connection, _ in
            if let existing = try await connection.row(
                "SELECT sha256 FROM cadences WHERE cadence_id = ? AND version = ?", document.id, document.version)
            {
                guard try existing.get(0, as: String.self) == sha else {
                    throw KeelError(
                        .invalidArgument,
                        "cadence \(document.id) version \(document.version) is registered with other steps: "
                            + "register the change as a higher version")
                }
                return false
            }
            try await connection.execute(
                "INSERT INTO cadences (cadence_id, version, document, sha256, registered_at) VALUES (?, ?, ?, ?, ?)",
                document.id, document.version, text, sha, now)
            return true
        }
    }

    /// A version of a cadence (the highest registered when `version` is `nil`).
    /// - Throws: ``KeelError`` `.workflowNotFound` when there is none.
    public func document(_ id: String, version: Int? = nil) async throws -> CadenceDocument {
        let row = try await driver.read { connection in
            try await connection.row(
                """
                SELECT document FROM cadences WHERE cadence_id = ? AND (version = ? OR ? = 0)
                ORDER BY version DESC LIMIT 1
                """, id, version ?? 0, version ?? 0)?.get(0, as: String.self)
        }
        if let row { return try JSONDecoder().decode(CadenceDocument.self, from: Data(row.utf8)) }
        let builtIn = CadenceDocument.outreach21
        if id == builtIn.id, version == nil || version == builtIn.version { return builtIn }
        throw KeelError(
            .workflowNotFound,
            "no cadence \(id)" + (version.map { " version \($0)" } ?? "") + " (see `worker cadence list`)")
    }

    /// Every registered version, by id and version (the built-in cadence first when not registered).
    public func documents() async throws -> [CadenceDocument] {
        let rows = try await driver.read { connection in
            try await connection.query("SELECT document FROM cadences ORDER BY cadence_id, version").map {
                try $0.get(0, as: String.self)
            }
        }
        let registered = try rows.map { try JSONDecoder().decode(CadenceDocument.self, from: Data($0.utf8)) }
        let builtIn = CadenceDocument.outreach21
        return registered.contains { $0.id == builtIn.id } ? registered : [builtIn] + registered
    }
}

/// `cadence.load`: the cadence document a run follows, read once when it starts — kept in its
/// history, so a version registered later changes nothing for it.
public struct LoadCadence: Activity {
    public static let name = "cadence.load"

    public struct Input: Codable, Sendable {
        public var id: String
        /// `nil`: the highest registered version.
        public var version: Int?
        public init(id: String, version: Int? = nil) {
            self.id = id
            self.version = version
        }
    }

    let library: CadenceLibrary
    public init(library: CadenceLibrary) { self.library = library }

    public func run(context: ActivityContext, input: Input) async throws -> CadenceDocument {
        do { return try await library.document(input.id, version: input.version) } catch let error as KeelError {
            throw ApplicationError(error.message, type: "CadenceNotFound", nonRetryable: true)
        }
    }
}

/// `outbound.suppress`: puts an address on the suppression list (an unsubscribe, a bounce).
public struct SuppressRecipient: Activity {
    public static let name = "outbound.suppress"

    public struct Input: Codable, Sendable {
        public var address: String
        public var reason: String
        public var source: Suppression.Source
        public init(address: String, reason: String, source: Suppression.Source) {
            self.address = address
            self.reason = reason
            self.source = source
        }
    }

    let ledger: OutboundLedger
    public init(ledger: OutboundLedger) { self.ledger = ledger }

    public func run(context: ActivityContext, input: Input) async throws -> Suppression {
        try await ledger.suppress(input.address, reason: input.reason, source: input.source, now: context.now)
    }
}
