import Foundation

// Child workflows: started by the commit that records the parent's command, linked to their
// parent in their row, reported back to the parent's inbox when they close, and ended by their
// parent-close policy when the parent closes first.
//
// Locking (PostgreSQL): a commit that touches other runs — targets of its external requests, its
// parent (when it closes), its open children (when it closes) — locks them and itself in one
// statement, in run-id order, so two commits of related runs wait for each other rather than
// deadlock. SQLite's writer is alone.
extension SQLWorkflowStore {
    /// Locks the committing run and the runs its commit will write to, in run-id order.
    func lockRelatedRuns(_ connection: any SQLConnection, _ prepared: PreparedCompletion) async throws {
        let plan = prepared.plan
        let completion = prepared.completion
        let closes = plan.closing != nil
        let parent = closes && plan.continuation == nil ? completion.parent?.runID : nil
        let children = closes && completion.hasChildren
        guard !dialect.lockRows.isEmpty, !plan.externalRequests.isEmpty || parent != nil || children else { return }
        var conditions = ["run_id = ?"]
        var binds: [SQLValue] = [.text(completion.runID)]
        if !plan.externalRequests.isEmpty {
            conditions.append(
                "(workflow_id IN (\(SQLDialect.placeholders(plan.externalRequests.count))) "
                    + "AND status IN \(RunStatus.openSQLList))")
            binds += plan.externalRequests.map { .text($0.workflowID) }
        }
        if let parent {
            conditions.append("run_id = ?")
            binds.append(.text(parent))
        }
        if children {
            conditions.append("(parent_run_id = ? AND status IN \(RunStatus.openSQLList))")
            binds.append(.text(completion.runID))
        }
        try await lockInRunIDOrder(connection, where: conditions.joined(separator: " OR "), binds)
    }

    /// Locks the runs matching `condition` in run-id order, in one statement (PostgreSQL).
    private func lockInRunIDOrder(_ connection: any SQLConnection, where condition: String, _ binds: [SQLValue])
        async throws
    {
        _ = try await connection.query(
            "SELECT run_id FROM workflow_runs WHERE \(condition) ORDER BY run_id\(dialect.lockRows)", binds)
    }

    /// Locks the open run of `workflowID`, its parent and its open children, in run-id order (an
    /// operator's termination, which tells the parent and applies the children's policy).
    func lockFamily(_ connection: any SQLConnection, ofOpenRunOf workflowID: String) async throws {
        guard !dialect.lockRows.isEmpty else { return }
        guard
            let row = try await connection.row(
                """
                SELECT run_id, parent_run_id FROM workflow_runs
                WHERE workflow_id = ? AND status IN \(RunStatus.openSQLList)
                """, workflowID)
        else { return }
        let runID: String = try row.get(0)
        try await lockInRunIDOrder(
            connection, where: "run_id = ? OR run_id = ? OR (parent_run_id = ? AND status IN \(RunStatus.openSQLList))",
            [.text(runID), try row.get(1, as: String?.self).sqlValue, .text(runID)])
    }

    /// Starts the plan's child workflows and, unless the parent is closing, queues each start's
    /// outcome in the parent's inbox. The caller holds the parent's row lock.
    /// - Returns: whether outcomes were queued (the parent then needs another task).
    func startChildren(
        _ connection: any SQLConnection, _ plan: CommitPlan, parent: ParentWorkflowInfo, queuesOutcomes: Bool,
        now: Date, notifications: inout StoreNotifications
    ) async throws -> Bool {
        guard !plan.children.isEmpty else { return false }
        var parentQueue: String?
        if plan.children.contains(where: { $0.options.taskQueue == nil }) {
            parentQueue = try await connection.row(
                "SELECT task_queue FROM workflow_runs WHERE run_id = ?", parent.runID)?.get(0)
        }
        for child in plan.children {
            let request = StartWorkflowRequest(
                workflowID: child.workflowID, workflowType: child.workflowType, input: child.input, now: now,
                taskQueue: child.options.taskQueue ?? parentQueue ?? TaskQueue.default,
                parent: ParentLink(parent: parent, seq: child.seq, closePolicy: child.options.parentClosePolicy))
            let started = try await insertRun(
                connection, request, started: try EventCodec.encode(startedKind(of: request)), needsTask: true,
                notifications: &notifications)
            let outcome: HistoryEvent.Kind
            if started.created {
                notifications.topics.insert(.workflowTasks)
                outcome = .childWorkflowStarted(seq: child.seq, runID: started.runID)
            } else {
                outcome = .childWorkflowStartFailed(
                    seq: child.seq,
                    failure: ErrorInfo(
                        type: "ChildWorkflowStart",
                        message: "cannot start child workflow '\(child.workflowType)': workflow '\(child.workflowID)' "
                            + "is already running (run \(started.runID)); a child needs an id no open run holds",
                        nonRetryable: true))
            }
            if queuesOutcomes {
                try await addToInbox(
                    connection, runID: parent.runID, kind: outcome, body: try EventCodec.encode(outcome), now: now,
                    notifications: &notifications)
            }
        }
        return queuesOutcomes
    }

    /// Tells the parent of `runID`, if it has one and it is open, that the child closed.
    func notifyParent(
        _ connection: any SQLConnection, ofClosedRun runID: String, _ closing: CommitPlan.Closing, now: Date,
        notifications: inout StoreNotifications
    ) async throws {
        guard
            let row = try await connection.row(
                "SELECT parent_run_id, parent_seq FROM workflow_runs WHERE run_id = ?", runID),
            let parentRunID = try row.get(0, as: String?.self), let seq = try row.get(1, as: Int?.self)
        else { return }
        var failure = closing.failure
        if closing.status == .cancelled {
            failure = ErrorInfo(type: "WorkflowCancelled", message: closing.reason ?? "cancelled")
        }
        let event = HistoryEvent.Kind.childWorkflowClosed(
            seq: seq, runID: runID, status: closing.status, result: closing.result, failure: failure)
        try await addToInbox(
            connection, runID: parentRunID, kind: event, body: try EventCodec.encode(event), now: now,
            notifications: &notifications)
    }

    /// Ends the open children of a run that just closed, as each one's parent-close policy says.
    func applyParentClosePolicy(
        _ connection: any SQLConnection, closedRun runID: String, now: Date, notifications: inout StoreNotifications
    ) async throws {
        let children = try await connection.query(
            """
            SELECT run_id, parent_close_policy, parent_workflow_id FROM workflow_runs
            WHERE parent_run_id = ? AND status IN \(RunStatus.openSQLList) ORDER BY run_id
            """, runID)
        for child in children {
            let childRunID: String = try child.get(0)
            let parentID: String = try child.get(2)
            switch ParentClosePolicy(rawValue: try child.get(1, as: String?.self) ?? "") ?? .terminate {
            case .terminate:
                try await terminateRun(
                    connection, runID: childRunID,
                    reason: "its parent workflow '\(parentID)' closed (parent-close policy terminate)", now: now,
                    notifications: &notifications)
            case .requestCancel:
                let kind = HistoryEvent.Kind.cancelRequested(
                    reason: "its parent workflow '\(parentID)' closed (parent-close policy requestCancel)")
                try await addToInbox(
                    connection, runID: childRunID, kind: kind, body: try EventCodec.encode(kind), now: now,
                    notifications: &notifications)
            case .abandon:
                break
            }
        }
    }

    func startedKind(of request: StartWorkflowRequest) -> HistoryEvent.Kind {
        .workflowStarted(
            workflowType: request.workflowType, workflowID: request.workflowID, input: request.input,
            parent: request.parent?.parent)
    }
}
