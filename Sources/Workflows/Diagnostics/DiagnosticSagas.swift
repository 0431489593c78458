import Activities
import Foundation
import WorkflowRuntime

/// `diagnostics.approval`: records a diagnostic effect (registering its undo first, so an unknown
/// outcome is compensated too), asks for one approval and returns the decision. On rejection or
/// expiry it fails, and the effect is compensated: a row appears in `diagnostic_compensations`
/// with `undone = 1` and the run ends `compensated`.
public struct DiagnosticApproval: Workflow {
    public static let name = "diagnostics.approval"

    public struct Input: Codable, Sendable {
        public var summary: String
        /// What the approver sees (and what the decision's hash binds to).
        public var payload: JSONValue
        public var deadlineSeconds: Double
        /// Who may decide (names or `role:NAME`); anyone when absent.
        public var approvers: [String]?

        public init(summary: String, payload: JSONValue, deadlineSeconds: Double, approvers: [String]? = nil) {
            self.summary = summary; self.payload = payload; self.deadlineSeconds = deadlineSeconds;
            self.approvers = approvers
        }
    }

    public init() {}

    public func run(context: WorkflowContext, input: Input) async throws -> ApprovalDecision {
        let deadline = try Duration.checked(seconds: input.deadlineSeconds, "deadlineSeconds", allowsZero: false)
        let effectKey = "\(context.info.workflowID)/\(context.info.runID)/effect"
        try context.addCompensation(UndoDiagnosticEffect.self, .init(effectKey: effectKey, step: 1))
        _ = try await context.execute(
            RecordDiagnosticEffect.self, .init(step: 1), options: ActivityOptions(idempotencyKey: effectKey))
        let decision = try await context.requestApproval(
            "diagnostics-approval", summary: input.summary, payload: input.payload, approvers: input.approvers ?? [],
            timeout: deadline)
        guard decision.isApproved else {
            let by = decision.decidedBy.map { " by \($0)" } ?? ""
            throw ApplicationError(
                "approval \(decision.outcome.rawValue)\(by)" + (decision.note.map { ": \($0)" } ?? ""),
                type: decision.outcome == .expired ? "ApprovalExpired" : "ApprovalRejected", nonRetryable: true)
        }
        return decision
    }
}

/// `diagnostics.saga`: records `steps` effects, registering the undo of each after it succeeds,
/// then fails on purpose (unless `succeed`), so the undos run in reverse order — each recorded in
/// `diagnostic_compensations` under its own idempotency key.
public struct DiagnosticSaga: Workflow {
    public static let name = "diagnostics.saga"

    public struct Input: Codable, Sendable {
        public var steps: Int
        public var stepDelayMilliseconds: Int?
        /// Work time of each undo, so a crash can land mid-compensation.
        public var undoDelayMilliseconds: Int?
        /// Lease of one attempt; a crashed worker's attempt is retried after it.
        public var attemptTimeoutSeconds: Double?
        public var succeed: Bool?

        public init(
            steps: Int, stepDelayMilliseconds: Int? = nil, undoDelayMilliseconds: Int? = nil,
            attemptTimeoutSeconds: Double? = nil, succeed: Bool? = nil
        ) {
            self.steps = steps; self.stepDelayMilliseconds = stepDelayMilliseconds;
            self.undoDelayMilliseconds = undoDelayMilliseconds
            self.attemptTimeoutSeconds = attemptTimeoutSeconds; self.succeed = succeed
        }
    }

    public init() {}

    public func run(context: WorkflowContext, input: Input) async throws -> Int {
        try DiagnosticInput.checkSteps(input.steps)
        try DiagnosticInput.checkDelay(input.stepDelayMilliseconds, "stepDelayMilliseconds")
        try DiagnosticInput.checkDelay(input.undoDelayMilliseconds, "undoDelayMilliseconds")
        let retry = RetryPolicy(initialInterval: .milliseconds(200), maximumInterval: .seconds(5))
        let timeout = try Duration.checked(
            seconds: input.attemptTimeoutSeconds ?? 30, "attemptTimeoutSeconds", allowsZero: false)
        for index in 0..<input.steps {
            let step = index + 1
            let key = "\(context.info.workflowID)/\(context.info.runID)/step-\(step)"
            _ = try await context.execute(
                RecordDiagnosticEffect.self, .init(step: step, delayMilliseconds: input.stepDelayMilliseconds),
                options: ActivityOptions(retryPolicy: retry, startToCloseTimeout: timeout, idempotencyKey: key))
            try context.addCompensation(
                UndoDiagnosticEffect.self,
                .init(effectKey: key, step: step, delayMilliseconds: input.undoDelayMilliseconds),
                options: ActivityOptions(retryPolicy: retry, startToCloseTimeout: timeout))
        }
        guard input.succeed == true else {
            throw ApplicationError(
                "diagnostics.saga fails on purpose after \(input.steps) steps", type: "DiagnosticFailure",
                nonRetryable: true)
        }
        return input.steps
    }
}
