import Foundation
import PostgresNIO
import WorkflowRuntime

// Approvals and compensation retries on PostgreSQL. The rules (who may decide what) are in
// `ApprovalRecord.refusal(of:runIsOpen:)`, shared with SQLite.
extension PostgresWorkflowStore {
    private static let approvalColumns = "run_id, seq, workflow_id, workflow_type, status, requested_at, request, decision, closed_at"

    package func decideApproval(_ attempt: ApprovalDecisionRequest) async throws -> ApprovalRecord {
        let decision = attempt.decision
        let decisionBody = try EventCodec.encode(attribute: decision)
        return try await transaction { [self] connection, notifications in
            guard let runID = try await connection.query("""
                SELECT run_id FROM approvals WHERE approval_id = \(attempt.approvalID)
                """, logger: logger).collect().first?.decode(String.self) else {
                throw KeelError(.approvalNotFound, "no approval with id '\(attempt.approvalID)' (see `worker approvals`)")
            }
            // The run's row first, as signals and workflow tasks do, then the approval's.
            let run = try await lockRun(connection, runID: runID)
            guard let record = try await approval(connection, id: attempt.approvalID, forUpdate: true) else {
                throw KeelError(.approvalNotFound, "no approval with id '\(attempt.approvalID)' (see `worker approvals`)")
            }
            if let refusal = record.refusal(of: attempt, runIsOpen: run?.status.isOpen == true) {
                try await audit(connection, record.auditEntry(for: attempt, refusal: refusal))
                return ApprovalDecisionOutcome.refused(refusal)
            }
            let decided = record.decided(by: attempt)
            try await connection.query("""
                UPDATE approvals SET status = \(decided.status.rawValue), decision = \(decisionBody),
                    closed_at = \(attempt.now.timeIntervalSince1970)
                WHERE approval_id = \(record.id)
                """, logger: logger)
            try await deleteDeadlineTimers(connection, runID: record.runID, seq: record.seq)
            try await audit(connection, record.auditEntry(for: attempt, refusal: nil))
            let kind = HistoryEvent.Kind.approvalDecided(seq: record.seq, decision: decision)
            try await addToInbox(connection, runID: record.runID, kind: kind, body: try EventCodec.encode(kind), now: attempt.now,
                                 notifications: &notifications)
            return ApprovalDecisionOutcome.decided(decided)
        }.get()
    }

    package func approval(id: String) async throws -> ApprovalRecord? {
        try await read { [self] connection in try await approval(connection, id: id, forUpdate: false) }
    }

    package func listApprovals(_ query: ApprovalQuery) async throws -> [ApprovalRecord] {
        try await read { [self] connection in
            try await connection.query("""
                SELECT approval_id, \(unescaped: Self.approvalColumns) FROM approvals
                WHERE (NOT \(query.pendingOnly) OR status = 'pending') AND (\(query.runID)::text IS NULL OR run_id = \(query.runID))
                ORDER BY requested_at DESC, approval_id DESC LIMIT \(query.limit)
                """, logger: logger).collect().map(Self.approval(from:))
        }
    }

    package func approvalAudit(approvalID: String) async throws -> [ApprovalAuditEntry] {
        try await read { [self] connection in
            try await connection.query("""
                SELECT approval_id, run_id, at, action, actor, role, origin, note, detail, payload_hash
                FROM approval_audit WHERE approval_id = \(approvalID) ORDER BY id
                """, logger: logger).collect().map { row in
                let (id, runID, at, action, actor, role, origin, note, detail, hash) =
                    try row.decode((String, String, Double, String, String?, String?, String?, String?, String?, String?).self)
                return ApprovalAuditEntry(approvalID: id, runID: runID, at: Date(timeIntervalSince1970: at),
                                          action: ApprovalAuditEntry.Action(rawValue: action) ?? .refused, actor: actor, role: role,
                                          origin: origin, note: note, detail: detail, payloadHash: hash)
            }
        }
    }

    package func retryCompensation(workflowID: String, requestedBy: String?, now: Date) async throws -> String {
        let kind = HistoryEvent.Kind.compensationRetryRequested(requestedBy: requestedBy)
        let body = try EventCodec.encode(kind)
        return try await transaction { [self] connection, notifications in
            let runID = try await lockOpenRun(connection, workflowID: workflowID, action: "retry its compensation")
            let updated = try await connection.query("""
                UPDATE workflow_runs SET status = 'running', status_reason = NULL
                WHERE run_id = \(runID) AND status = 'compensationFailed' RETURNING 1
                """, logger: logger).collect()
            guard !updated.isEmpty else {
                throw KeelError(.invalidState, "cannot retry: workflow '\(workflowID)' has no failed compensation")
            }
            try await addToInbox(connection, runID: runID, kind: kind, body: body, now: now, notifications: &notifications)
            return runID
        }
    }
}

// MARK: - Statements used by workflow-task commits and timers

extension PostgresWorkflowStore {
    /// Stores the approval requests a task made, each with its deadline timer and an audit entry.
    func insertApprovals(_ connection: PostgresConnection, _ plan: CommitPlan, runID: String) async throws {
        for approval in plan.approvals {
            let request = approval.request
            let body = try EventCodec.encode(attribute: request)
            try await connection.query("""
                INSERT INTO approvals (approval_id, run_id, seq, workflow_id, workflow_type, name, status, requested_at, deadline, request)
                SELECT \(request.id), run_id, \(approval.seq), workflow_id, workflow_type, \(request.name), 'pending',
                       \(approval.requestedAt.timeIntervalSince1970), \(request.deadline.timeIntervalSince1970), \(body)
                FROM workflow_runs WHERE run_id = \(runID)
                """, logger: logger)
            try await connection.query("""
                INSERT INTO timers (run_id, seq, fire_at, purpose)
                VALUES (\(runID), \(approval.seq), \(request.deadline.timeIntervalSince1970), 'approval')
                """, logger: logger)
            try await audit(connection, ApprovalAuditEntry(approvalID: request.id, runID: runID, at: approval.requestedAt,
                                                           action: .requested, payloadHash: request.payloadHash))
        }
    }

    /// Withdraws the run's pending approvals: it no longer waits for them.
    func withdrawApprovals(_ connection: PostgresConnection, runID: String, now: Date) async throws {
        let withdrawn = try await connection.query("""
            UPDATE approvals SET status = 'withdrawn', closed_at = \(now.timeIntervalSince1970)
            WHERE run_id = \(runID) AND status = 'pending' RETURNING approval_id
            """, logger: logger).collect().map { try $0.decode(String.self) }
        for approvalID in withdrawn {
            try await audit(connection, ApprovalAuditEntry(approvalID: approvalID, runID: runID, at: now, action: .withdrawn))
        }
        if !withdrawn.isEmpty { try await deleteDeadlineTimers(connection, runID: runID, seq: nil) }
    }

    /// Deletes the deadline timer of the run's approval `seq` (of all its approvals when `nil`).
    /// A timer being fired right now is skipped, not waited for: it finds the approval decided.
    func deleteDeadlineTimers(_ connection: PostgresConnection, runID: String, seq: Int?) async throws {
        try await connection.query("""
            DELETE FROM timers WHERE id IN (
                SELECT id FROM timers WHERE run_id = \(runID) AND purpose = 'approval' AND (\(seq)::int IS NULL OR seq = \(seq))
                FOR UPDATE SKIP LOCKED)
            """, logger: logger)
    }

    /// Expires the approval whose deadline timer fired, unless it was decided or withdrawn first.
    /// - Returns: the event to deliver, or `nil`.
    func expireApproval(_ connection: PostgresConnection, runID: String, seq: Int, now: Date) async throws -> HistoryEvent.Kind? {
        let decision = ApprovalDecision(outcome: .expired, decidedAt: now)
        let body = try EventCodec.encode(attribute: decision)
        guard let approvalID = try await connection.query("""
            UPDATE approvals SET status = 'expired', decision = \(body), closed_at = \(now.timeIntervalSince1970)
            WHERE run_id = \(runID) AND seq = \(seq) AND status = 'pending' RETURNING approval_id
            """, logger: logger).collect().first?.decode(String.self) else { return nil }
        try await audit(connection, ApprovalAuditEntry(approvalID: approvalID, runID: runID, at: now, action: .expired))
        return .approvalDecided(seq: seq, decision: decision)
    }

    func audit(_ connection: PostgresConnection, _ entry: ApprovalAuditEntry) async throws {
        try await connection.query("""
            INSERT INTO approval_audit (approval_id, run_id, at, action, actor, role, origin, note, detail, payload_hash)
            VALUES (\(entry.approvalID), \(entry.runID), \(entry.at.timeIntervalSince1970), \(entry.action.rawValue), \(entry.actor),
                    \(entry.role), \(entry.origin), \(entry.note), \(entry.detail), \(entry.payloadHash))
            """, logger: logger)
    }

    func approval(_ connection: PostgresConnection, id: String, forUpdate: Bool) async throws -> ApprovalRecord? {
        try await connection.query("""
            SELECT approval_id, \(unescaped: Self.approvalColumns) FROM approvals WHERE approval_id = \(id)
            \(unescaped: forUpdate ? "FOR UPDATE" : "")
            """, logger: logger).collect().first.map(Self.approval(from:))
    }

    static func approval(from row: PostgresRow) throws -> ApprovalRecord {
        let (_, runID, seq, workflowID, workflowType, status, requestedAt, request, decision, closedAt) =
            try row.decode((String, String, Int, String, String, String, Double, Data, Data?, Double?).self)
        return ApprovalRecord(
            request: try EventCodec.decode(attribute: ApprovalRequest.self, from: request),
            workflowID: workflowID, runID: runID, seq: seq, workflowType: workflowType,
            requestedAt: Date(timeIntervalSince1970: requestedAt), status: ApprovalStatus(rawValue: status) ?? .pending,
            decision: try decision.map { try EventCodec.decode(attribute: ApprovalDecision.self, from: $0) },
            closedAt: closedAt.map(Date.init(timeIntervalSince1970:)))
    }
}
