import Foundation

// Signals, cancellation requests and the run inbox they wait in until the run's next workflow task.
extension SQLWorkflowStore {
    package func signal(_ request: SignalRequest) async throws -> SignalOutcome {
        let kind = HistoryEvent.Kind.signalReceived(
            name: request.name, payload: request.payload, requestID: request.requestID)
        let body = try EventCodec.encode(kind)
        return try await driver.write { [self] connection, notifications in
            let runID = try await lockOpenRun(
                connection, workflowID: request.workflowID, action: "signal '\(request.name)'")
            return try await deliverSignal(
                connection, request, kind: kind, body: body, to: runID, notifications: &notifications)
        }
    }

    /// Puts the signal in the inbox of open run `runID` (locked by the caller), unless its request
    /// id was seen for that run.
    /// - Throws: `.requestIDReused` when the id carried a different signal.
    func deliverSignal(
        _ connection: any SQLConnection, _ request: SignalRequest, kind: HistoryEvent.Kind, body: Data,
        to runID: String, notifications: inout StoreNotifications
    ) async throws -> SignalOutcome {
        if let requestID = request.requestID {
            let inserted = try await connection.changes(
                """
                INSERT INTO signal_requests (run_id, request_id, received_at, fingerprint) VALUES (?, ?, ?, ?)
                ON CONFLICT DO NOTHING\(dialect.countingChanges)
                """, runID, requestID, request.now, request.fingerprint)
            if inserted == 0 {
                let earlier = try await connection.row(
                    "SELECT fingerprint FROM signal_requests WHERE run_id = ? AND request_id = ?", runID, requestID
                )?.get(0, as: String?.self)
                if let earlier, earlier != request.fingerprint { throw request.reusedRequestIDError(requestID) }
                return .duplicate(runID: runID)
            }
        }
        try await addToOpenRunInbox(
            connection, runID: runID, kind: kind, body: body, now: request.now, notifications: &notifications)
        return .delivered(runID: runID)
    }

    package func requestCancellation(workflowID: String, reason: String?, now: Date) async throws -> String {
        let kind = HistoryEvent.Kind.cancelRequested(reason: reason)
        let body = try EventCodec.encode(kind)
        return try await driver.write { [self] connection, notifications in
            let runID = try await lockOpenRun(connection, workflowID: workflowID, action: "cancel")
            try await addToOpenRunInbox(
                connection, runID: runID, kind: kind, body: body, now: now, notifications: &notifications)
            return runID
        }
    }

    /// Marks the open run as needing a task (locking it) and queues the event; a closed run takes nothing.
    func addToInbox(
        _ connection: any SQLConnection, runID: String, kind: HistoryEvent.Kind, body: Data, now: Date,
        notifications: inout StoreNotifications
    ) async throws {
        try await addToInboxes(connection, [(runID, kind, body)], now: now, notifications: &notifications)
    }

    /// Queues `events` (each with its run and encoded body), in order, in the inboxes of their
    /// runs that are still open, and marks those runs as needing a task; closed runs take
    /// nothing. Up to ``inboxChunk`` events take one multi-row insert (timers due together).
    func addToInboxes(
        _ connection: any SQLConnection, _ events: [(runID: String, kind: HistoryEvent.Kind, body: Data)], now: Date,
        notifications: inout StoreNotifications
    ) async throws {
        var start = 0
        while start < events.count {
            let chunk = events[start..<min(start + Self.inboxChunk, events.count)]
            start += chunk.count
            let open = try await markNeedingTask(connection, runIDs: Set(chunk.map(\.runID)).sorted(), now: now)
            let queued = chunk.filter { open.contains($0.runID) }
            guard !queued.isEmpty else { continue }
            try await connection.execute(
                """
                INSERT INTO run_inbox (run_id, kind, timestamp, body)
                VALUES \(Array(repeating: "(?, ?, ?, ?)", count: queued.count).joined(separator: ", "))
                """,
                queued.flatMap { event -> [SQLValue] in
                    [.text(event.runID), .text(event.kind.name), now.sqlValue, .blob(event.body)]
                })
            notifications.topics.insert(.workflowTasks)
        }
    }

    /// Most events ``addToInboxes(_:_:now:notifications:)`` inserts with one statement.
    private static var inboxChunk: Int { 200 }

    /// Marks the open ones of `runIDs` (sorted) as needing a task, locking them in that order so
    /// concurrent writers cannot deadlock. - Returns: the open ones. One run costs one statement.
    private func markNeedingTask(_ connection: any SQLConnection, runIDs: [String], now: Date) async throws
        -> Set<String>
    {
        if runIDs.count == 1 {
            let update = markingNeedingTask(runIDs, now: now)
            let updated = try await connection.changes(update.sql + dialect.countingChanges, update.binds)
            return updated > 0 ? Set(runIDs) : []
        }
        let open = try await connection.query(
            """
            SELECT run_id FROM workflow_runs
            WHERE run_id IN (\(SQLDialect.placeholders(runIDs.count))) AND status IN \(RunStatus.openSQLList)
            ORDER BY run_id\(dialect.lockRows)
            """, runIDs.map(SQLValue.text)
        ).map { try $0.get(0, as: String.self) }
        if !open.isEmpty {
            let update = markingNeedingTask(open, now: now)
            try await connection.execute(update.sql, update.binds)
        }
        return Set(open)
    }

    /// The statement that marks the open ones of `runIDs` as needing a task (ready now, unless
    /// already), for events queued in their inboxes: it raises their `inbox_version`, which a
    /// claimed task's commit checks (``SQLWorkflowStore/writeFence(_:run:)``).
    private func markingNeedingTask(_ runIDs: [String], now: Date) -> SQLStatement {
        SQLStatement(
            """
            UPDATE workflow_runs
            SET task_ready_at = CASE WHEN needs_task = \(dialect.true) THEN task_ready_at ELSE ? END,
                needs_task = \(dialect.true), updated_at = ?, inbox_version = inbox_version + 1
            WHERE run_id IN (\(SQLDialect.placeholders(runIDs.count))) AND status IN \(RunStatus.openSQLList)
            """, [now.sqlValue, now.sqlValue] + runIDs.map(SQLValue.text))
    }

    /// ``addToInbox(_:runID:kind:body:now:notifications:)`` for a run the caller has locked and
    /// found open: marking the run and queuing the event touch different rows, and go together
    /// (``SQLConnection/executeTogether(_:)``: one round trip on PostgreSQL).
    func addToOpenRunInbox(
        _ connection: any SQLConnection, runID: String, kind: HistoryEvent.Kind, body: Data, now: Date,
        notifications: inout StoreNotifications
    ) async throws {
        try await connection.executeTogether([
            markingNeedingTask([runID], now: now),
            SQLStatement(
                "INSERT INTO run_inbox (run_id, kind, timestamp, body) VALUES (?, ?, ?, ?)", runID, kind.name, now, body
            ),
        ])
        notifications.topics.insert(.workflowTasks)
    }

    /// Whether events wait in the run's inbox after `id` (after none: any).
    func hasInbox(_ connection: any SQLConnection, runID: String, after id: Int64?) async throws -> Bool {
        try await connection.row("SELECT EXISTS (SELECT 1 FROM run_inbox WHERE run_id = ? AND id > ?)", runID, id ?? 0)?
            .get(0) ?? false
    }

    /// The run's inbox after id `after`, oldest first, at most `limit` events.
    func inbox(_ connection: any SQLConnection, runID: String, after: Int64? = nil, limit: Int? = nil) async throws
        -> [InboxEvent]
    {
        try await connection.query(
            "SELECT id, timestamp, body FROM run_inbox WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?",
            runID, after ?? 0, limit ?? Int(Int32.max)
        )
        .map(Self.inboxEvent(from:))
    }

    /// The first `limit` inbox rows (`id, timestamp, body`) of each of `runIDs`, oldest first, by
    /// run, in one statement: a claim of many runs reads their inboxes in one round trip. The
    /// rows are decoded by the caller (``inboxEvent(from:)``), so one undecodable row spoils only its run.
    func inboxRows(_ connection: any SQLConnection, runIDs: [String], limit: Int) async throws -> [String: [SQLRow]] {
        guard !runIDs.isEmpty else { return [:] }
        let rows = try await connection.query(
            """
            SELECT run_id, id, timestamp, body FROM (
                SELECT run_id, id, timestamp, body, ROW_NUMBER() OVER (PARTITION BY run_id ORDER BY id) AS position
                FROM run_inbox WHERE run_id IN (\(SQLDialect.placeholders(runIDs.count)))
            ) AS numbered
            WHERE position <= ? ORDER BY run_id, id
            """, runIDs.map(SQLValue.text) + [.int(Int64(limit))])
        var byRun: [String: [SQLRow]] = [:]
        for row in rows {
            byRun[try row.get(0), default: []].append(SQLRow(Array(row.values.dropFirst())))
        }
        return byRun
    }

    /// An inbox event from a row `id, timestamp, body`.
    static func inboxEvent(from row: SQLRow) throws -> InboxEvent {
        InboxEvent(id: try row.get(0), timestamp: try row.get(1), kind: try EventCodec.decode(try row.get(2)))
    }

    package func inbox(runID: String, after: Int64?) async throws -> [InboxEvent] {
        try await driver.read { [self] connection in try await inbox(connection, runID: runID, after: after) }
    }
}
