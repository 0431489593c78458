import Foundation
import GRDB
import WorkflowRuntime

// Approvals and compensation retries on SQLite. The rules (who may decide what) are in
// `ApprovalRecord.refusal(of:runIsOpen:)`, shared with PostgreSQL.
extension SQLiteWorkflowStore {
    package func decideApproval(_ attempt: ApprovalDecisionRequest) async throws -> ApprovalRecord {
        let decision = attempt.decision
        let decisionBody = try EventCodec.encode(attribute: decision)
        return try await write { db, notifications in
            guard let record = try Self.approval(db, id: attempt.approvalID) else {
                throw KeelError(.approvalNotFound, "no approval with id '\(attempt.approvalID)' (see `worker approvals`)")
            }
            let runStatus = try db.cachedValue(String.self, sql: "SELECT status FROM workflow_runs WHERE run_id = ?",
                                               arguments: [record.runID]).flatMap(RunStatus.init(rawValue:))
            if let refusal = record.refusal(of: attempt, runIsOpen: runStatus?.isOpen == true) {
                try Self.audit(db, record.auditEntry(for: attempt, refusal: refusal))
                return ApprovalDecisionOutcome.refused(refusal)
            }
            let decided = record.decided(by: attempt)
            try db.executeCached(sql: "UPDATE approvals SET status = ?, decision = ?, closed_at = ? WHERE approval_id = ?",
                                 arguments: [decided.status.rawValue, decisionBody, attempt.now.timeIntervalSince1970, record.id])
            try db.executeCached(sql: "DELETE FROM timers WHERE run_id = ? AND seq = ? AND purpose = 'approval'",
                                 arguments: [record.runID, record.seq])
            try Self.audit(db, record.auditEntry(for: attempt, refusal: nil))
            let kind = HistoryEvent.Kind.approvalDecided(seq: record.seq, decision: decision)
            try Self.addToInbox(db, runID: record.runID, kind: kind, body: try EventCodec.encode(kind), now: attempt.now,
                                notifications: &notifications)
            return ApprovalDecisionOutcome.decided(decided)
        }.get()
    }

    package func approval(id: String) async throws -> ApprovalRecord? {
        try await pool.read { db in try Self.approval(db, id: id) }
    }

    package func listApprovals(_ query: ApprovalQuery) async throws -> [ApprovalRecord] {
        try await pool.read { db in
            try db.cachedRows(sql: """
                SELECT * FROM approvals
                WHERE (? = 0 OR status = 'pending') AND (? IS NULL OR run_id = ?)
                ORDER BY requested_at DESC, approval_id DESC LIMIT ?
                """, arguments: [query.pendingOnly, query.runID, query.runID, query.limit]).map(Self.approval(from:))
        }
    }

    package func approvalAudit(approvalID: String) async throws -> [ApprovalAuditEntry] {
        try await pool.read { db in
            try db.cachedRows(sql: "SELECT * FROM approval_audit WHERE approval_id = ? ORDER BY id", arguments: [approvalID]).map { row in
                ApprovalAuditEntry(
                    approvalID: row["approval_id"], runID: row["run_id"], at: Date(timeIntervalSince1970: row["at"]),
                    action: ApprovalAuditEntry.Action(rawValue: row["action"]) ?? .refused, actor: row["actor"], role: row["role"],
                    origin: row["origin"], note: row["note"], detail: row["detail"], payloadHash: row["payload_hash"])
            }
        }
    }

    package func retryCompensation(workflowID: String, requestedBy: String?, now: Date) async throws -> String {
        let kind = HistoryEvent.Kind.compensationRetryRequested(requestedBy: requestedBy)
        let body = try EventCodec.encode(kind)
        return try await write { db, notifications in
            let runID = try Self.openRunID(db, workflowID: workflowID, action: "retry its compensation")
            try db.executeCached(sql: """
                UPDATE workflow_runs SET status = 'running', status_reason = NULL WHERE run_id = ? AND status = 'compensationFailed'
                """, arguments: [runID])
            guard db.changesCount > 0 else {
                throw KeelError(.invalidState, "cannot retry: workflow '\(workflowID)' has no failed compensation")
            }
            try Self.addToInbox(db, runID: runID, kind: kind, body: body, now: now, notifications: &notifications)
            return runID
        }
    }
}

// MARK: - Statements used by workflow-task commits and timers

extension SQLiteWorkflowStore {
    /// Stores the approval requests a task made, each with its deadline timer and an audit entry.
    static func insertApprovals(_ db: Database, _ plan: CommitPlan, runID: String) throws {
        for approval in plan.approvals {
            let request = approval.request
            try db.executeCached(sql: """
                INSERT INTO approvals (approval_id, run_id, seq, workflow_id, workflow_type, name, status, requested_at, deadline, request)
                SELECT ?, run_id, ?, workflow_id, workflow_type, ?, 'pending', ?, ?, ? FROM workflow_runs WHERE run_id = ?
                """, arguments: [request.id, approval.seq, request.name, approval.requestedAt.timeIntervalSince1970,
                                 request.deadline.timeIntervalSince1970, try EventCodec.encode(attribute: request), runID])
            try db.executeCached(sql: "INSERT INTO timers (run_id, seq, fire_at, purpose) VALUES (?, ?, ?, 'approval')",
                                 arguments: [runID, approval.seq, request.deadline.timeIntervalSince1970])
            try audit(db, ApprovalAuditEntry(approvalID: request.id, runID: runID, at: approval.requestedAt, action: .requested,
                                             payloadHash: request.payloadHash))
        }
    }

    /// Withdraws the run's pending approvals: it no longer waits for them.
    static func withdrawApprovals(_ db: Database, runID: String, now: Date) throws {
        let withdrawn = try db.cachedRows(sql: """
            UPDATE approvals SET status = 'withdrawn', closed_at = ? WHERE run_id = ? AND status = 'pending' RETURNING approval_id
            """, arguments: [now.timeIntervalSince1970, runID])
        for row in withdrawn {
            try audit(db, ApprovalAuditEntry(approvalID: row[0], runID: runID, at: now, action: .withdrawn))
        }
        if !withdrawn.isEmpty {
            try db.executeCached(sql: "DELETE FROM timers WHERE run_id = ? AND purpose = 'approval'", arguments: [runID])
        }
    }

    /// Expires the approval whose deadline timer fired, unless it was decided or withdrawn first.
    /// - Returns: the event to deliver, or `nil`.
    static func expireApproval(_ db: Database, runID: String, seq: Int, now: Date) throws -> HistoryEvent.Kind? {
        let decision = ApprovalDecision(outcome: .expired, decidedAt: now)
        guard let approvalID = try db.cachedValue(String.self, sql: """
            UPDATE approvals SET status = 'expired', decision = ?, closed_at = ?
            WHERE run_id = ? AND seq = ? AND status = 'pending' RETURNING approval_id
            """, arguments: [try EventCodec.encode(attribute: decision), now.timeIntervalSince1970, runID, seq]) else { return nil }
        try audit(db, ApprovalAuditEntry(approvalID: approvalID, runID: runID, at: now, action: .expired))
        return .approvalDecided(seq: seq, decision: decision)
    }

    static func audit(_ db: Database, _ entry: ApprovalAuditEntry) throws {
        try db.executeCached(sql: """
            INSERT INTO approval_audit (approval_id, run_id, at, action, actor, role, origin, note, detail, payload_hash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [entry.approvalID, entry.runID, entry.at.timeIntervalSince1970, entry.action.rawValue, entry.actor,
                             entry.role, entry.origin, entry.note, entry.detail, entry.payloadHash])
    }

    static func approval(_ db: Database, id: String) throws -> ApprovalRecord? {
        try db.cachedRow(sql: "SELECT * FROM approvals WHERE approval_id = ?", arguments: [id]).map(approval(from:))
    }

    static func approval(from row: Row) throws -> ApprovalRecord {
        ApprovalRecord(
            request: try EventCodec.decode(attribute: ApprovalRequest.self, from: row["request"]),
            workflowID: row["workflow_id"], runID: row["run_id"], seq: row["seq"], workflowType: row["workflow_type"],
            requestedAt: Date(timeIntervalSince1970: row["requested_at"]),
            status: ApprovalStatus(rawValue: row["status"]) ?? .pending,
            decision: try (row["decision"] as Data?).map { try EventCodec.decode(attribute: ApprovalDecision.self, from: $0) },
            closedAt: (row["closed_at"] as Double?).map(Date.init(timeIntervalSince1970:)))
    }
}
