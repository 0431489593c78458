import ArgumentParser
import Foundation
import WorkflowRuntime

/// `worker approvals [--pending] [--json]`.
struct ApprovalsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approvals", abstract: "List approval requests, newest first (or show one, with its audit trail).")

    @OptionGroup var database: DatabaseOptions

    @Argument(help: "An approval id: show that request, its exact payload and its audit trail.")
    var id: String?

    @Flag(help: "Only requests waiting for a decision.")
    var pending = false

    @Option(help: "At most this many requests.")
    var limit = 50

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            guard limit > 0 else { throw KeelError(.invalidArgument, "--limit must be positive") }
            try await database.withStore { store in
                let client = WorkflowClient(store: store)
                if let id {
                    let (record, audit) = try await client.approval(id)
                    if json { return try printJSON(ApprovalDetails(approval: record, audit: audit)) }
                    return print(ApprovalRenderer.details(record, audit: audit))
                }
                let approvals = try await client.approvals(ApprovalQuery(pendingOnly: pending, limit: limit))
                if json { return try printJSON(approvals) }
                print(
                    approvals.isEmpty
                        ? (pending ? "no pending approvals" : "no approvals") : ApprovalRenderer.table(approvals))
            }
        }
    }

    private struct ApprovalDetails: Encodable {
        var approval: ApprovalRecord
        var audit: [ApprovalAuditEntry]
    }
}

/// Options shared by `approve` and `reject`.
struct DecisionOptions: ParsableArguments {
    @Argument(help: "The approval id (see `approvals --pending`).")
    var approvalID: String

    @Option(help: "Who decides (matched against the request's approvers).")
    var by: String

    @Option(help: "The role the decider acts in (matched against `role:NAME` approvers).")
    var role: String?

    @Option(help: "Decide only if the payload's SHA-256 starts with these hex digits (at least 6).")
    var hash: String?

    /// Where the decision comes from, for the audit trail.
    var origin: String {
        let user = ProcessInfo.processInfo.userName
        return "cli \(user)@\(ProcessInfo.processInfo.hostName)"
    }
}

/// `worker approve APPROVAL_ID --by NAME [--note T] [--hash PREFIX]`.
struct ApproveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve", abstract: "Approve a pending approval request.")

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var decision: DecisionOptions

    @Option(help: "A note for the record.")
    var note: String?

    func run() async throws {
        try await reportingErrors {
            try await database.withStore { store in
                let record = try await WorkflowClient(store: store).approve(
                    decision.approvalID, by: decision.by, role: decision.role, note: note,
                    payloadHashPrefix: decision.hash,
                    origin: decision.origin)
                printLine("approved \(record.id) ('\(record.request.name)' of \(record.workflowID)) by \(decision.by)")
            }
        }
    }
}

/// `worker reject APPROVAL_ID --by NAME --reason T`.
struct RejectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reject", abstract: "Reject a pending approval request, with a reason.")

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var decision: DecisionOptions

    @Option(help: "Why (recorded and given to the workflow).")
    var reason: String

    func run() async throws {
        try await reportingErrors {
            try await database.withStore { store in
                let record = try await WorkflowClient(store: store).reject(
                    decision.approvalID, by: decision.by, role: decision.role, reason: reason,
                    payloadHashPrefix: decision.hash,
                    origin: decision.origin)
                printLine("rejected \(record.id) ('\(record.request.name)' of \(record.workflowID)) by \(decision.by)")
            }
        }
    }
}

/// `worker retry ID [--by NAME]`.
struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry", abstract: "Retry the failed compensation of a run in status compensationFailed.")

    @OptionGroup var database: DatabaseOptions

    @Argument(help: "Workflow id.")
    var id: String

    @Option(help: "Who asks (recorded in the history).")
    var by: String?

    func run() async throws {
        try await reportingErrors {
            try await database.withStore { store in
                try await WorkflowClient(store: store).retryCompensation(workflowID: id, requestedBy: by)
                printLine("compensation retry requested for \(id)")
            }
        }
    }
}

/// Human-readable views of approval requests.
enum ApprovalRenderer {
    static func table(_ approvals: [ApprovalRecord]) -> String {
        var table = TextTable(
            "ID", "WORKFLOW", "NAME", "STATUS", "SUMMARY", "REQUESTED", "DEADLINE", "APPROVERS", "SHA-256")
        for approval in approvals {
            let request = approval.request
            table.add(
                approval.id, approval.workflowID, request.name, approval.status.rawValue,
                Formatting.abbreviate(request.summary, to: 40),
                Formatting.time(approval.requestedAt), Formatting.time(request.deadline), approvers(request),
                String(request.payloadHash.prefix(12)))
        }
        return table.render()
    }

    static func details(_ approval: ApprovalRecord, audit: [ApprovalAuditEntry]) -> String {
        let request = approval.request
        var lines = [
            "Approval  \(approval.id)", "Workflow  \(approval.workflowID) (run \(approval.runID))",
            "Name      \(request.name)",
            "Summary   \(request.summary)", "Status    \(approval.status.rawValue)",
            "Requested \(Formatting.time(approval.requestedAt))",
            "Deadline  \(Formatting.time(request.deadline))", "Approvers \(approvers(request))",
            "SHA-256   \(request.payloadHash)",
            "Payload   \(request.payload)",
        ]
        if let decision = approval.decision { lines.append("Decision  \(describe(decision))") }
        lines = lines.map(NameRules.escapingControls)
        var table = TextTable("TIME", "ACTION", "BY", "FROM", "NOTE / DETAIL")
        for entry in audit {
            let by = [entry.actor, entry.role.map { "as \($0)" }].compactMap { $0 }.joined(separator: " ")
            let text = [entry.note, entry.detail].compactMap { $0 }.joined(separator: " — ")
            table.add(
                Formatting.time(entry.at), entry.action.rawValue, by.isEmpty ? "-" : by, entry.origin ?? "-",
                Formatting.abbreviate(text.isEmpty ? "-" : text, to: 100))
        }
        return lines.joined(separator: "\n") + "\n\nAudit\n" + table.render()
    }

    static func describe(_ decision: ApprovalDecision) -> String {
        decision.outcome.rawValue + (decision.decidedBy.map { " by \($0)" } ?? "")
            + (decision.role.map { " as \($0)" } ?? "")
            + " at \(Formatting.time(decision.decidedAt))" + (decision.note.map { ": \($0)" } ?? "")
    }

    private static func approvers(_ request: ApprovalRequest) -> String {
        request.approvers.isEmpty ? "anyone" : request.approvers.joined(separator: ",")
    }
}
