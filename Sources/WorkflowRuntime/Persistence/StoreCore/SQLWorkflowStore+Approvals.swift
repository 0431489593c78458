import Foundation

// Approvals and compensation retries. Who may decide what is `ApprovalRecord.refusal(of:runIsOpen:)`.
extension SQLWorkflowStore {
    private static var approvalColumns: String {
        "approval_id, run_id, seq, workflow_id, workflow_type, status, requested_at, request, decision, closed_at"
    }

    package func decideApproval(_ attempt: ApprovalDecisionRequest) async throws -> ApprovalRecord {
        let decision = attempt.decision
        let decisionBody = try EventCodec.encode(attribute: decision)
        return try await driver.write { [self] connection, notifications in
            let notFound = KeelError(
                .approvalNotFound, "no approval with id '\(attempt.approvalID)' (see `worker approvals`)")
            guard
                let runID = try await connection.row(
                    "SELECT run_id FROM approvals WHERE approval_id = ?", attempt.approvalID)?
                    .get(0, as: String.self)
            else { throw notFound }
            // The run's row first, as signals and workflow tasks do, then the approval's.
            let run = try await lockRun(connection, runID: runID)
            guard let record = try await approval(connection, id: attempt.approvalID, forUpdate: true) else {
                throw notFound
            }
            if let refusal = record.refusal(of: attempt, runIsOpen: run?.status.isOpen == true) {
                try await audit(connection, record.auditEntry(for: attempt, refusal: refusal))
                return ApprovalDecisionOutcome.refused(refusal)
            }
            let decided = record.decided(by: attempt)
            try await connection.execute(
                "UPDATE approvals SET status = ?, decision = ?, closed_at = ? WHERE approval_id = ?",
                decided.status.rawValue, decisionBody, attempt.now, record.id)
            try await deleteDeadlineTimers(connection, runID: record.runID, seq: record.seq)
            try await audit(connection, record.auditEntry(for: attempt, refusal: nil))
            let kind = HistoryEvent.Kind.approvalDecided(seq: record.seq, decision: decision)
            try await addToInbox(
                connection, runID: record.runID, kind: kind, body: try EventCodec.encode(kind), now: attempt.now,
                notifications: &notifications)
            return ApprovalDecisionOutcome.decided(decided)
        }.get()
    }

    package func approval(id: String) async throws -> ApprovalRecord? {
        try await driver.read { [self] connection in try await approval(connection, id: id, forUpdate: false) }
    }

    package func listApprovals(_ query: ApprovalQuery) async throws -> [ApprovalRecord] {
        try await driver.read { connection in
            try await connection.query(
                """
                SELECT \(Self.approvalColumns) FROM approvals
                WHERE (NOT ? OR status = 'pending') AND (CAST(? AS TEXT) IS NULL OR run_id = ?)
                ORDER BY requested_at DESC, approval_id DESC LIMIT ?
                """, query.pendingOnly, query.runID, query.runID, query.limit
            ).map(Self.approval(from:))
        }
    }

    package func approvalAudit(approvalID: String) async throws -> [ApprovalAuditEntry] {
        try await driver.read { connection in
            try await connection.query(
                """
                SELECT approval_id, run_id, at, action, actor, role, origin, note, detail, payload_hash
                FROM approval_audit WHERE approval_id = ? ORDER BY id
                """, approvalID
            ).map { row in
                ApprovalAuditEntry(
                    approvalID: try row.get(0), runID: try row.get(1), at: try row.get(2),
                    action: ApprovalAuditEntry.Action(rawValue: try row.get(3)) ?? .refused, actor: try row.get(4),
                    role: try row.get(5), origin: try row.get(6), note: try row.get(7), detail: try row.get(8),
                    payloadHash: try row.get(9))
            }
        }
    }

    package func retryCompensation(workflowID: String, requestedBy: String?, now: Date) async throws -> String {
        let kind = HistoryEvent.Kind.compensationRetryRequested(requestedBy: requestedBy)
        let body = try EventCodec.encode(kind)
        return try await driver.write { [self] connection, notifications in
            let runID = try await lockOpenRun(connection, workflowID: workflowID, action: "retry its compensation")
            let updated = try await connection.changes(
                """
                UPDATE workflow_runs SET status = 'running', status_reason = NULL
                WHERE run_id = ? AND status = 'compensationFailed'\(dialect.countingChanges)
                """, runID)
            guard updated > 0 else {
                throw KeelError(.invalidState, "cannot retry: workflow '\(workflowID)' has no failed compensation")
            }
            try await addToInbox(
                connection, runID: runID, kind: kind, body: body, now: now, notifications: &notifications)
            return runID
        }
    }

    // MARK: - Statements used by workflow-task commits and timers

    /// Stores the approval requests a task made, each with its deadline timer and an audit entry.
    func insertApprovals(_ connection: any SQLConnection, _ plan: CommitPlan, runID: String) async throws {
        for approval in plan.approvals {
            let request = approval.request
            let body = try EventCodec.encode(attribute: request)
            try await connection.execute(
                """
                INSERT INTO approvals (approval_id, run_id, seq, workflow_id, workflow_type, name, status,
                    requested_at, deadline,
                                       request)
                SELECT ?, run_id, ?, workflow_id, workflow_type, ?, 'pending', ?, ?,
                    ? FROM workflow_runs WHERE run_id = ?
                """, request.id, approval.seq, request.name, approval.requestedAt, request.deadline, body, runID)
            try await connection.execute(
                "INSERT INTO timers (run_id, seq, fire_at, purpose) VALUES (?, ?, ?, 'approval')",
                runID, approval.seq, request.deadline)
            try await audit(
                connection,
                ApprovalAuditEntry(
                    approvalID: request.id, runID: runID, at: approval.requestedAt,
                    action: .requested, payloadHash: request.payloadHash))
        }
    }

    /// Withdraws the run's pending approvals: it no longer waits for them.
    func withdrawApprovals(_ connection: any SQLConnection, runID: String, now: Date) async throws {
        let withdrawn = try await connection.query(
            """
            UPDATE approvals SET status = 'withdrawn', closed_at = ? WHERE run_id = ?
                AND status = 'pending' RETURNING approval_id
            """, now, runID
        ).map { try $0.get(0, as: String.self) }
        for approvalID in withdrawn {
            try await audit(
                connection, ApprovalAuditEntry(approvalID: approvalID, runID: runID, at: now, action: .withdrawn))
        }
        if !withdrawn.isEmpty { try await deleteDeadlineTimers(connection, runID: runID, seq: nil) }
    }

    /// Deletes the deadline timer of the run's approval `seq` (of all its approvals when `nil`).
    /// On PostgreSQL a timer being fired right now is skipped, not waited for: it finds the approval decided.
    func deleteDeadlineTimers(_ connection: any SQLConnection, runID: String, seq: Int?) async throws {
        try await connection.execute(
            """
            DELETE FROM timers WHERE id IN (
                SELECT id FROM timers WHERE run_id = ? AND purpose = 'approval'
                    AND (CAST(? AS INTEGER) IS NULL OR seq = ?)
                \(dialect.skipLocked))
            """, runID, seq, seq)
    }

    /// Expires the approval whose deadline timer fired, unless it was decided or withdrawn first.
    /// - Returns: the event to deliver, or `nil`.
    func expireApproval(_ connection: any SQLConnection, runID: String, seq: Int, now: Date) async throws
        -> HistoryEvent.Kind?
    {
        let decision = ApprovalDecision(outcome: .expired, decidedAt: now)
        let body = try EventCodec.encode(attribute: decision)
        guard
            let approvalID = try await connection.row(
                """
                UPDATE approvals SET status = 'expired', decision = ?, closed_at = ?
                WHERE run_id = ? AND seq = ? AND status = 'pending' RETURNING approval_id
                """, body, now, runID, seq)?.get(0, as: String.self)
        else { return nil }
        try await audit(connection, ApprovalAuditEntry(approvalID: approvalID, runID: runID, at: now, action: .expired))
        return .approvalDecided(seq: seq, decision: decision)
    }

    func audit(_ connection: any SQLConnection, _ entry: ApprovalAuditEntry) async throws {
        try await connection.execute(
            """
            INSERT INTO approval_audit (approval_id, run_id, at, action, actor, role, origin, note, detail,
                payload_hash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, entry.approvalID, entry.runID, entry.at, entry.action.rawValue, entry.actor, entry.role, entry.origin,
            entry.note,
            entry.detail, entry.payloadHash)
    }

    func approval(_ connection: any SQLConnection, id: String, forUpdate: Bool) async throws -> ApprovalRecord? {
        try await connection.row(
            """
            SELECT \(Self.approvalColumns) FROM approvals WHERE approval_id = ?\(forUpdate ? dialect.lockRows : "")
            """, id
        ).map(Self.approval(from:))
    }

    static func approval(from row: SQLRow) throws -> ApprovalRecord {
        ApprovalRecord(
            request: try EventCodec.decode(attribute: ApprovalRequest.self, from: try row.get(7)),
            workflowID: try row.get(3), runID: try row.get(1), seq: try row.get(2), workflowType: try row.get(4),
            requestedAt: try row.get(6), status: ApprovalStatus(rawValue: try row.get(5)) ?? .pending,
            decision: try row.get(8, as: Data?.self).map {
                try EventCodec.decode(attribute: ApprovalDecision.self, from: $0)
            },
            closedAt: try row.get(9))
    }
}
