import Foundation
import Synchronization
import WorkflowRuntime

/// Workflows and activities for the approval and compensation tests.

/// Records what the saga activities did, in order, and fails the calls it is told to fail.
final class SagaLedger: Sendable {
    struct Entry: Sendable, Equatable {
        var action: String
        var key: String
    }

    private let state = Mutex<(entries: [Entry], failures: [String: Int])>(([], [:]))

    /// Makes the next `times` calls of `action` fail (for good: the activities do not retry).
    func fail(_ action: String, times: Int = 1) {
        state.withLock { $0.failures[action] = times }
    }

    var entries: [Entry] { state.withLock { $0.entries } }
    var actions: [String] { entries.map(\.action) }

    func record(_ action: String, key: String) throws {
        try state.withLock { state in
            state.entries.append(Entry(action: action, key: key))
            if let left = state.failures[action], left > 0 {
                state.failures[action] = left - 1
                throw ApplicationError("\(action) failed", type: "StepFailed", nonRetryable: true)
            }
        }
    }
}

/// Does a named step (records `do:NAME`); fails if the ledger says so. With `effectThenFail`,
/// it records the effect and then fails: the workflow cannot tell whether the effect happened.
struct DoStep: Activity {
    static let name = "test.do-step"
    let ledger: SagaLedger

    struct Input: Codable, Sendable {
        var step: String
        var effectThenFail = false
    }

    func run(context: ActivityContext, input: Input) async throws -> String {
        try ledger.record("do:\(input.step)", key: context.idempotencyKey)
        if input.effectThenFail {
            throw ApplicationError("connection reset after the request was sent", type: "OutcomeUnknown", nonRetryable: true)
        }
        return "did \(input.step)"
    }
}

/// Undoes a named step (records `undo:NAME`), tolerating "nothing to undo".
struct UndoStep: Activity {
    static let name = "test.undo-step"
    let ledger: SagaLedger

    func run(context: ActivityContext, input: String) async throws -> String {
        try ledger.record("undo:\(input)", key: context.idempotencyKey)
        return "undid \(input)"
    }
}

private let once = ActivityOptions(retryPolicy: RetryPolicy(maximumAttempts: 1))

/// Steps `a`, `b`, `c` in order, registering each one's undo after it succeeds; then waits for
/// the signal `finish` if asked to (so it can be cancelled there).
struct ThreeStepSaga: Workflow {
    static let name = "test.three-step-saga"

    struct Input: Codable, Sendable {
        var waitForFinish = false
    }

    func run(context: WorkflowContext, input: Input) async throws -> String {
        for step in ["a", "b", "c"] {
            _ = try await context.execute(DoStep.self, .init(step: step), options: once)
            try context.addCompensation(UndoStep.self, step, options: once)
        }
        if input.waitForFinish {
            _ = try await context.waitForSignal("finish", as: JSONValue.self)
        }
        return "done"
    }
}

/// Registers the undo of `charge` *before* calling it: its outcome may be unknown.
struct UnknownOutcomeSaga: Workflow {
    static let name = "test.unknown-outcome-saga"

    struct Input: Codable, Sendable {
        var effectHappens: Bool
    }

    func run(context: WorkflowContext, input: Input) async throws -> String {
        _ = try await context.execute(DoStep.self, .init(step: "reserve"), options: once)
        try context.addCompensation(UndoStep.self, "reserve", options: once)
        try context.addCompensation(UndoStep.self, "charge", options: once)
        _ = try await context.execute(DoStep.self, .init(step: "charge", effectThenFail: input.effectHappens), options: once)
        return "charged"
    }
}

/// Three workstreams at once, each doing a step and registering its undo; then a consolidation step.
struct ParallelWorkstreams: Workflow {
    static let name = "test.parallel-workstreams"

    func run(context: WorkflowContext, input: [String]) async throws -> [String] {
        let results = try await context.parallel(input) { stream in
            let result = try await context.execute(DoStep.self, .init(step: stream), options: once)
            try context.addCompensation(UndoStep.self, stream, options: once)
            return result
        }
        _ = try await context.execute(DoStep.self, .init(step: "consolidate"), options: once)
        return results
    }
}

/// Asks `approvers` for approval; on expiry escalates once to `escalateTo`; returns who decided what.
struct EscalatingApproval: Workflow {
    static let name = "test.escalating-approval"

    struct Input: Codable, Sendable {
        var approvers: [String]
        var escalateTo: [String]?
        var timeoutHours: Double = 48
    }

    func run(context: WorkflowContext, input: Input) async throws -> String {
        let terms = ["amount": 250_000, "days": 30]
        var decision = try await context.requestApproval(
            "manager", summary: "Discount for Acme", payload: terms, approvers: input.approvers,
            timeout: .seconds(input.timeoutHours * 3600))
        if decision.outcome == .expired, let escalateTo = input.escalateTo {
            decision = try await context.requestApproval(
                "director", summary: "Escalated: discount for Acme", payload: terms, approvers: escalateTo,
                timeout: .seconds(input.timeoutHours * 3600))
        }
        return "\(decision.outcome.rawValue) by \(decision.decidedBy ?? "nobody")" + (decision.note.map { ": \($0)" } ?? "")
    }
}

/// Requests an approval, works for an hour, and only then waits for the decision.
struct ApprovalThenWork: Workflow {
    static let name = "test.approval-then-work"

    func run(context: WorkflowContext, input: String) async throws -> String {
        let pending = try await context.startApproval("legal", summary: "Contract review", payload: input, timeout: .seconds(86_400))
        try await context.sleep(for: .seconds(3600))
        let decision = try await pending.decision()
        return "\(decision.outcome.rawValue) by \(decision.decidedBy ?? "nobody")"
    }
}

/// Does a step (registering its undo), then asks for an approval and waits for it.
struct StepThenApproval: Workflow {
    static let name = "test.step-then-approval"

    func run(context: WorkflowContext, input: String) async throws -> String {
        _ = try await context.execute(DoStep.self, .init(step: input), options: once)
        try context.addCompensation(UndoStep.self, input, options: once)
        let decision = try await context.requestApproval("go-ahead", summary: "Proceed with \(input)?", payload: input,
                                                         timeout: .seconds(86_400))
        return decision.outcome.rawValue
    }
}

func sagaRegistry(_ ledger: SagaLedger) -> WorkflowRegistry {
    var registry = WorkflowRegistry()
    registry.register(ThreeStepSaga.self)
    registry.register(UnknownOutcomeSaga.self)
    registry.register(ParallelWorkstreams.self)
    registry.register(EscalatingApproval.self)
    registry.register(ApprovalThenWork.self)
    registry.register(StepThenApproval.self)
    registry.register(DoStep(ledger: ledger))
    registry.register(UndoStep(ledger: ledger))
    return registry
}
