import Foundation
import WorkflowRuntime

/// The outbound tables of a workflow database (migration `0012_outbound`): the outbox, the
/// suppression list, each sender's daily counts and the emergency stop. Every change is one
/// transaction; on PostgreSQL the rows a send decides on are locked, so workers sending at once
/// never pass a limit or send a suppressed address.
public struct OutboundLedger: Sendable {
    private let driver: any SQLDriver
    private var dialect: SQLDialect { driver.dialect }

    /// The ledger of `database` (either backend).
    /// - Throws: ``KeelError`` `.invalidArgument` for a database that is not Keel's SQL store.
    public init(database: WorkflowDatabase) throws {
        guard let store = database.store as? SQLWorkflowStore else {
            throw KeelError(.invalidArgument, "the outbound tables need a Keel SQLite or PostgreSQL database")
        }
        driver = store.driver
    }

    // MARK: - Sends

    /// One attempt of an outbound call (a message, or a provider operation such as a CRM update),
    /// as the gateway asks the ledger to decide it.
    struct Attempt: Sendable {
        var idempotencyKey: String
        var channel: OutboundChannel
        /// `send` for a message; the provider operation otherwise (`crm.upsert-contact`).
        var operation: String
        /// Who sends, for a message: counted against ``dailyLimit`` per ``day``.
        var sender: String?
        /// Who receives, for a message: checked against the suppression list.
        var recipient: String?
        /// The rendered call, as JSON.
        var body: String
        var workflowID: String
        var runID: String
        var mode: ChannelConfiguration.Mode
        var dailyLimit: Int?
        var day: SenderDay
        var now: Date
    }

    /// What the attempt may do.
    enum Admission: Sendable, Equatable {
        /// Hand the message to the provider (live), then ``complete(_:status:providerMessageID:now:)``.
        case deliver
        /// Nothing more to do: recorded (shadow), suppressed, or done by an earlier attempt.
        case done(SendReceipt)
        /// The emergency stop is on: look again later.
        case held(reason: String)
        /// The sender's limit for the day is reached.
        case overLimit(limit: Int)
    }

    /// Decides one attempt in one transaction: writes the key's outbox row (once, whatever the
    /// retries), checks the emergency stop and the suppression list, and counts the send against
    /// the sender's day.
    func admit(_ attempt: Attempt) async throws -> Admission {
        try await driver.write { [dialect] connection, _ in
            try await connection.execute(
                """
                INSERT INTO outbox (idempotency_key, channel, operation, sender, recipient, mode, status, message,
                                    workflow_id, run_id, attempts, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, 0, ?, ?)
                ON CONFLICT (idempotency_key) DO NOTHING
                """, attempt.idempotencyKey, attempt.channel.rawValue, attempt.operation, attempt.sender,
                attempt.recipient, attempt.mode.rawValue, attempt.body, attempt.workflowID, attempt.runID, attempt.now,
                attempt.now)
            guard
                let row = try await connection.row(
                    """
                    SELECT status, provider_message_id, detail, counted_day FROM outbox
                    WHERE idempotency_key = ?\(dialect.lockRows)
                    """, attempt.idempotencyKey)
            else { throw KeelError(.storage, "the outbox row of \(attempt.idempotencyKey) vanished") }
            let status = try OutboxStatus(row.get(0, as: String.self))
            // The day the send was counted on, if it was: written with the row's status, so a
            // send held or deferred after it was counted is not counted again.
            var countedDay: String? = try row.get(3)
            func update(_ status: OutboxStatus, detail: String? = nil) async throws {
                try await connection.execute(
                    """
                    UPDATE outbox SET status = ?, detail = ?, counted_day = ?, attempts = attempts + 1, updated_at = ?
                    WHERE idempotency_key = ?
                    """, status.rawValue, detail, countedDay, attempt.now, attempt.idempotencyKey)
            }
            if let final = status.sendStatus {  // an earlier attempt finished it: repeat its answer
                let detail: String? = try row.get(2)
                try await update(status, detail: detail)
                return .done(
                    SendReceipt(
                        status: final, idempotencyKey: attempt.idempotencyKey, providerMessageID: try row.get(1),
                        detail: detail))
            }
            if let reason = try await Self.emergencyStopReason(connection) {
                try await update(.held, detail: "emergency stop: \(reason)")
                return .held(reason: reason)
            }
            if let recipient = attempt.recipient,
                let suppression = try await Self.suppression(connection, of: recipient, dialect: dialect)
            {
                let detail =
                    "\(suppression.address) is suppressed (\(suppression.source.rawValue): \(suppression.reason))"
                try await update(.suppressed, detail: detail)
                return .done(SendReceipt(status: .suppressed, idempotencyKey: attempt.idempotencyKey, detail: detail))
            }
            if countedDay == nil, let sender = attempt.sender {
                let (channel, day) = (attempt.channel.rawValue, attempt.day.description)
                try await connection.execute(
                    """
                    INSERT INTO send_counts (channel, sender, day, sent) VALUES (?, ?, ?, 0)
                    ON CONFLICT (channel, sender, day) DO NOTHING
                    """, channel, sender, day)
                let sent =
                    try await connection.row(
                        "SELECT sent FROM send_counts WHERE channel = ? AND sender = ? AND day = ?\(dialect.lockRows)",
                        channel, sender, day)?.get(0, as: Int.self) ?? 0
                if let limit = attempt.dailyLimit, sent >= limit {
                    try await update(.deferred, detail: "\(sender) reached its limit of \(limit) on \(attempt.day)")
                    return .overLimit(limit: limit)
                }
                try await connection.execute(
                    "UPDATE send_counts SET sent = sent + 1 WHERE channel = ? AND sender = ? AND day = ?",
                    channel, sender, day)
                countedDay = day
            }
            switch attempt.mode {
            case .shadow:
                try await update(.shadowed)
                return .done(SendReceipt(status: .shadowed, idempotencyKey: attempt.idempotencyKey))
            case .live:
                try await update(.sending)
                return .deliver
            }
        }
    }

    /// Records what the provider answered: the message id of a send, or why it failed for good.
    func complete(
        _ key: String, status: OutboxStatus, providerMessageID: String? = nil, detail: String? = nil, now: Date
    )
        async throws
    {
        try await driver.write { connection, _ in
            try await connection.execute(
                """
                UPDATE outbox SET status = ?, provider_message_id = ?, detail = ?, updated_at = ?,
                                  sent_at = CASE WHEN ? THEN ? ELSE sent_at END
                WHERE idempotency_key = ?
                """, status.rawValue, providerMessageID, detail, now, status == .sent || status == .manualRequired, now,
                key)
        }
    }

    /// The outbox, newest first.
    public func outbox(channel: OutboundChannel? = nil, runID: String? = nil, limit: Int = 100) async throws
        -> [OutboxEntry]
    {
        var filters: [String] = []
        var binds: [SQLValue] = []
        if let channel {
            filters.append("channel = ?")
            binds.append(channel.rawValue.sqlValue)
        }
        if let runID {
            filters.append("run_id = ?")
            binds.append(runID.sqlValue)
        }
        let condition = filters.isEmpty ? "" : "WHERE " + filters.joined(separator: " AND ")
        return try await driver.read { [binds] connection in
            try await connection.query(
                """
                SELECT \(OutboxEntry.columns) FROM outbox \(condition)
                ORDER BY created_at DESC, idempotency_key LIMIT ?
                """, binds + [limit.sqlValue]
            ).map(OutboxEntry.init)
        }
    }

    /// The outbox row of one idempotency key.
    public func outboxEntry(_ key: String) async throws -> OutboxEntry? {
        try await driver.read { connection in
            try await connection.row(
                "SELECT \(OutboxEntry.columns) FROM outbox WHERE idempotency_key = ?", key
            ).map(OutboxEntry.init)
        }
    }

    // MARK: - Suppression list

    /// Adds `address` (or a whole domain, written `@example.com`) to the suppression list, or
    /// updates its reason. - Returns: the entry.
    /// - Throws: ``InvalidValueError`` for an empty address.
    @discardableResult
    public func suppress(_ address: String, reason: String, source: Suppression.Source, now: Date = Date())
        async throws -> Suppression
    {
        let entry = try Suppression(address: address, reason: reason, source: source, createdAt: now)
        try await driver.write { connection, _ in
            try await connection.execute(
                """
                INSERT INTO suppressions (address, reason, source, created_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (address) DO UPDATE SET reason = excluded.reason, source = excluded.source
                """, entry.address, entry.reason, entry.source.rawValue, now)
        }
        return entry
    }

    /// Removes `address` from the suppression list. - Returns: whether it was there.
    @discardableResult
    public func unsuppress(_ address: String) async throws -> Bool {
        let address = Recipient.normalized(address)
        return try await driver.write { [dialect] connection, _ in
            try await connection.changes(
                "DELETE FROM suppressions WHERE address = ?\(dialect.countingChanges)", address) > 0
        }
    }

    /// The suppression list, by address.
    public func suppressions() async throws -> [Suppression] {
        try await driver.read { connection in
            try await connection.query("SELECT address, reason, source, created_at FROM suppressions ORDER BY address")
                .map(Suppression.init)
        }
    }

    /// The entry that blocks sending to `address` (itself or its domain), if any.
    public func suppression(of address: String) async throws -> Suppression? {
        try await driver.read { [dialect] connection in
            try await Self.suppression(connection, of: address, dialect: dialect)
        }
    }

    private static func suppression(_ connection: any SQLConnection, of address: String, dialect: SQLDialect)
        async throws -> Suppression?
    {
        let keys = Recipient.suppressionKeys(for: address)
        return try await connection.query(
            """
            SELECT address, reason, source, created_at FROM suppressions
            WHERE address IN (\(SQLDialect.placeholders(keys.count))) ORDER BY address
            """, keys.map(\.sqlValue)
        ).first.map(Suppression.init)
    }

    // MARK: - Daily limits

    /// Each sender's count on each day, newest day first.
    public func sendCounts(since day: SenderDay? = nil) async throws -> [SendCount] {
        try await driver.read { connection in
            try await connection.query(
                """
                SELECT channel, sender, day, sent FROM send_counts WHERE day >= ?
                ORDER BY day DESC, channel, sender
                """, day?.description ?? ""
            ).map(SendCount.init)
        }
    }

    // MARK: - Emergency stop

    /// Switches the emergency stop: while it is on, every send waits and nothing leaves.
    @discardableResult
    public func setEmergencyStop(_ active: Bool, reason: String?, by operator: String?, now: Date = Date())
        async throws -> EmergencyStop
    {
        try await driver.write { connection, _ in
            try await connection.execute(
                """
                INSERT INTO outbound_controls (name, active, reason, changed_by, changed_at)
                VALUES ('emergency-stop', ?, ?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET active = excluded.active, reason = excluded.reason,
                    changed_by = excluded.changed_by, changed_at = excluded.changed_at
                """, active, reason, `operator`, now)
        }
        return EmergencyStop(active: active, reason: reason, changedBy: `operator`, changedAt: now)
    }

    /// The emergency stop's state (off, never changed, when there is no row).
    public func emergencyStop() async throws -> EmergencyStop {
        try await driver.read { connection in
            guard
                let row = try await connection.row(
                    "SELECT active, reason, changed_by, changed_at FROM outbound_controls WHERE name = 'emergency-stop'"
                )
            else { return EmergencyStop(active: false, reason: nil, changedBy: nil, changedAt: nil) }
            return EmergencyStop(
                active: try row.get(0), reason: try row.get(1), changedBy: try row.get(2), changedAt: try row.get(3))
        }
    }

    private static func emergencyStopReason(_ connection: any SQLConnection) async throws -> String? {
        guard
            let row = try await connection.row(
                "SELECT active, reason FROM outbound_controls WHERE name = 'emergency-stop'"),
            try row.get(0, as: Bool.self)
        else { return nil }
        return try row.get(1, as: String?.self) ?? "no reason given"
    }
}

/// Where an outbox row stands.
enum OutboxStatus: String, Sendable {
    /// Written by the first attempt, not yet decided.
    case pending
    /// Waiting for the emergency stop to be switched off.
    case held
    /// Waiting for the next day: the sender's limit was reached.
    case deferred
    /// Counted and handed to the provider (a crash here sends again, with the same idempotency key).
    case sending
    /// The provider refused it for good (the detail holds its message).
    case failed
    case shadowed, sent, manualRequired, suppressed

    init(_ text: String) throws {
        guard let status = OutboxStatus(rawValue: text) else {
            throw KeelError(.storage, "an outbox row has the unknown status '\(text)'")
        }
        self = status
    }

    /// The answer a finished row gives every later attempt.
    var sendStatus: SendStatus? {
        switch self {
        case .shadowed: .shadowed
        case .sent: .sent
        case .manualRequired: .manualRequired
        case .suppressed: .suppressed
        case .pending, .held, .deferred, .sending, .failed: nil
        }
    }
}

/// One row of the outbox.
public struct OutboxEntry: Sendable, Hashable, Codable {
    public var idempotencyKey: String
    public var channel: String
    /// `send` for a message; the provider operation otherwise (`crm.upsert-contact`).
    public var operation: String
    public var sender: String?
    public var recipient: String?
    /// `shadow` or `live`.
    public var mode: String
    /// `pending`, `held`, `deferred`, `sending`, `failed`, `shadowed`, `sent`, `manualRequired`, `suppressed`.
    public var status: String
    /// The rendered message or call, as JSON.
    public var message: String
    public var workflowID: String
    public var runID: String
    public var providerMessageID: String?
    /// Why it is held, deferred, suppressed or failed.
    public var detail: String?
    /// The attempts that reached the ledger.
    public var attempts: Int
    public var createdAt: Date
    public var sentAt: Date?

    static let columns = """
        idempotency_key, channel, sender, recipient, mode, status, message, workflow_id, run_id, provider_message_id,
        detail, attempts, created_at, sent_at, operation
        """

    init(_ row: SQLRow) throws {
        idempotencyKey = try row.get(0)
        channel = try row.get(1)
        sender = try row.get(2)
        recipient = try row.get(3)
        mode = try row.get(4)
        status = try row.get(5)
        message = try row.get(6)
        workflowID = try row.get(7)
        runID = try row.get(8)
        providerMessageID = try row.get(9)
        detail = try row.get(10)
        attempts = try row.get(11)
        createdAt = try row.get(12)
        sentAt = try row.get(13)
        operation = try row.get(14)
    }
}

/// An address or domain that is never sent to.
public struct Suppression: Sendable, Hashable, Codable {
    /// Why it is on the list.
    public enum Source: String, Sendable, Hashable, Codable, CaseIterable {
        case unsubscribe, bounce, complaint, manual
    }

    /// A normalized address, or `@domain` for a whole domain.
    public var address: String
    public var reason: String
    public var source: Source
    public var createdAt: Date

    init(address: String, reason: String, source: Source, createdAt: Date) throws {
        let address = Recipient.normalized(address)
        guard !address.isEmpty, address != "@" else {
            throw InvalidValueError(
                name: "address", value: "\"\"", requirement: "an address, a number, or @domain for a whole domain")
        }
        self.address = address
        self.reason = reason
        self.source = source
        self.createdAt = createdAt
    }

    fileprivate init(_ row: SQLRow) throws {
        let source: String = try row.get(2)
        guard let parsed = Source(rawValue: source) else {
            throw KeelError(.storage, "a suppression has the unknown source '\(source)'")
        }
        try self.init(address: try row.get(0), reason: try row.get(1), source: parsed, createdAt: try row.get(3))
    }
}

/// How many sends one sender made on one day.
public struct SendCount: Sendable, Hashable, Codable {
    public var channel: String
    public var sender: String
    /// `YYYY-MM-DD` in the sender's zone.
    public var day: String
    public var sent: Int

    fileprivate init(_ row: SQLRow) throws {
        channel = try row.get(0)
        sender = try row.get(1)
        day = try row.get(2)
        sent = try row.get(3)
    }
}

/// The emergency stop's state.
public struct EmergencyStop: Sendable, Hashable, Codable {
    public var active: Bool
    public var reason: String?
    public var changedBy: String?
    public var changedAt: Date?
}
