import WorkflowRuntime

/// Human-readable views of runs.
enum RunRenderer {
    static func summary(_ run: WorkflowRun) -> String {
        var lines = ["\(run.workflowID): \(run.status.rawValue)"]
        if let result = run.result { lines.append("result: \(result)") }
        if let failure = run.failure { lines.append("error: \(failure)") }
        if let reason = run.statusReason { lines.append("reason: \(reason)") }
        return lines.map(NameRules.escapingControls).joined(separator: "\n")
    }

    static func details(_ description: WorkflowDescription, fullHistory: Bool) -> String {
        let run = description.run
        var fields: [(String, String)] = [
            ("Workflow", run.workflowID), ("Run", run.runID), ("Type", run.workflowType),
            ("Status", run.status.rawValue),
        ]
        if let stage = run.stage { fields.append(("Stage", stage)) }
        fields += [
            ("Created", Formatting.time(run.createdAt)), ("Updated", Formatting.time(run.updatedAt)),
        ]
        if let closed = run.closedAt { fields.append(("Closed", Formatting.time(closed))) }
        fields.append(("Input", run.input.description))
        if let result = run.result { fields.append(("Result", result.description)) }
        if let failure = run.failure { fields.append(("Error", failure.description)) }
        if let reason = run.statusReason { fields.append((run.status == .blocked ? "Blocked" : "Reason", reason)) }
        fields.append(("Events", "\(run.historyLength)"))
        if let previous = run.previousRunID { fields.append(("From", "run \(previous) (continued as new)")) }
        if let parent = run.parent { fields.append(("Parent", "\(parent.workflowID) (run \(parent.runID))")) }
        if !description.searchAttributes.isEmpty {
            fields.append(
                (
                    "Search",
                    description.searchAttributes.sorted { $0.key < $1.key }
                        .map { "\($0.key)=\($0.value.text)" }.joined(separator: " ")
                ))
        }
        var sections = [
            fields.map {
                "\($0.0.padding(toLength: 9, withPad: " ", startingAt: 0))\(NameRules.escapingControls($0.1))"
            }
            .joined(separator: "\n")
        ]

        let pending = description.pending
        if !pending.activities.isEmpty {
            var table = TextTable(
                "SEQ", "ACTIVITY", "QUEUE", "ATTEMPT", "NEXT ATTEMPT / LEASE UNTIL", "OWNER", "LAST ERROR")
            for activity in pending.activities {
                table.add(
                    "\(activity.seq)", activity.activityName, activity.taskQueue, "\(activity.attempt)",
                    Formatting.time(activity.nextAttemptAt), activity.leaseOwner ?? "-",
                    Formatting.abbreviate(activity.lastError ?? "-"))
            }
            sections.append("Pending activities\n" + table.render())
        }
        if !pending.timers.isEmpty {
            var table = TextTable("SEQ", "FIRES AT")
            for timer in pending.timers { table.add("\(timer.seq)", Formatting.time(timer.fireAt)) }
            sections.append("Pending timers\n" + table.render())
        }
        if !pending.inbox.isEmpty {
            var table = TextTable("RECEIVED", "EVENT")
            for entry in pending.inbox { table.add(Formatting.time(entry.receivedAt), entry.detail) }
            sections.append("Not yet processed\n" + table.render())
        }
        if !description.approvals.isEmpty {
            var table = TextTable("ID", "NAME", "STATUS", "DEADLINE", "DECISION")
            for approval in description.approvals {
                table.add(
                    approval.id, approval.request.name, approval.status.rawValue,
                    Formatting.time(approval.request.deadline),
                    approval.decision.map(ApprovalRenderer.describe) ?? "-")
            }
            sections.append("Approvals\n" + table.render())
        }
        if !description.children.isEmpty {
            var table = TextTable("CHILD WORKFLOW ID", "TYPE", "STATUS", "CREATED", "CLOSED")
            for child in description.children {
                table.add(
                    child.workflowID, child.workflowType, child.status.rawValue, Formatting.time(child.createdAt),
                    Formatting.time(child.closedAt))
            }
            sections.append("Children (worker list --parent \(run.workflowID) for all)\n" + table.render())
        }
        if !description.previousRuns.isEmpty {
            var table = TextTable("RUN", "STATUS", "CREATED", "CLOSED", "EVENTS")
            for previous in description.previousRuns {
                table.add(
                    previous.runID, previous.status.rawValue, Formatting.time(previous.createdAt),
                    Formatting.time(previous.closedAt), "\(previous.historyLength)")
            }
            sections.append("Previous runs (newest first)\n" + table.render())
        }
        if let history = description.history {
            let events = fullHistory ? history : timeline(history)
            var table = TextTable("#", "TIME", "EVENT", "DETAIL")
            for event in events {
                table.add(
                    "\(event.id)", Formatting.time(event.timestamp), event.kind.name,
                    Formatting.abbreviate(event.kind.detail, to: 100))
            }
            sections.append((fullHistory ? "History\n" : "Timeline (--history for every event)\n") + table.render())
        }
        return sections.joined(separator: "\n\n")
    }

    /// The milestones of a history: start, approvals, cancellation, requests to other workflows,
    /// cancelled activities, children, stages, compensation (with its steps), closing.
    static func timeline(_ history: [HistoryEvent]) -> [HistoryEvent] {
        var compensating = false
        return history.filter { event in
            switch event.kind {
            case .workflowStarted, .approvalRequested, .approvalDecided, .cancelRequested, .compensationFailed,
                .compensationRetryRequested, .externalSignalRequested, .externalCancelRequested, .externalRequestFailed,
                .activityCancelRequested, .childWorkflowRequested, .childWorkflowStartFailed, .childWorkflowClosed,
                .stageChanged:
                return true
            case .compensationStarted:
                compensating = true
                return true
            case .activityScheduled, .activityCompleted, .activityFailed:
                return compensating
            default:
                return event.kind.isClosing
            }
        }
    }
}
