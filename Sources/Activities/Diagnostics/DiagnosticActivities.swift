import Foundation
import WorkflowRuntime

/// Records one step's effect under the attempt's idempotency key (see ``DiagnosticEffects``).
public struct RecordDiagnosticEffect: Activity {
    public static let name = "diagnostics.record-effect"

    public struct Input: Codable, Sendable {
        public var step: Int
        /// Work time before the effect, so a crash can land mid-step.
        public var delayMilliseconds: Int?

        public init(step: Int, delayMilliseconds: Int? = nil) {
            self.step = step
            self.delayMilliseconds = delayMilliseconds
        }
    }

    public struct Output: Codable, Sendable {
        public var step: Int
        public var attempts: Int
    }

    let effects: any DiagnosticEffects

    public init(effects: any DiagnosticEffects) {
        self.effects = effects
    }

    public func run(context: ActivityContext, input: Input) async throws -> Output {
        try await simulateWork(milliseconds: input.delayMilliseconds)
        let attempts = try await effects.record(
            idempotencyKey: context.idempotencyKey, workflowID: context.workflowID, step: input.step)
        return Output(step: input.step, attempts: attempts)
    }
}

/// Undoes a step's effect recorded by ``RecordDiagnosticEffect`` (a compensation). Tolerates
/// "nothing to undo": the effect may never have happened.
public struct UndoDiagnosticEffect: Activity {
    public static let name = "diagnostics.undo-effect"

    public struct Input: Codable, Sendable {
        /// The idempotency key the effect was recorded under.
        public var effectKey: String
        public var step: Int
        /// Work time before undoing, so a crash can land mid-compensation.
        public var delayMilliseconds: Int?

        public init(effectKey: String, step: Int, delayMilliseconds: Int? = nil) {
            self.effectKey = effectKey
            self.step = step
            self.delayMilliseconds = delayMilliseconds
        }
    }

    public struct Output: Codable, Sendable {
        /// Whether there was an effect to undo.
        public var undone: Bool
        public var attempts: Int
    }

    let effects: any DiagnosticEffects

    public init(effects: any DiagnosticEffects) {
        self.effects = effects
    }

    public func run(context: ActivityContext, input: Input) async throws -> Output {
        try await simulateWork(milliseconds: input.delayMilliseconds)
        let (attempts, undone) = try await effects.compensate(
            idempotencyKey: context.idempotencyKey, effectKey: input.effectKey, workflowID: context.workflowID,
            step: input.step)
        return Output(undone: undone, attempts: attempts)
    }
}

/// Sleeps for a diagnostic step's simulated work time: up to an hour (a longer or negative value
/// fails the attempt for good, naming it).
private func simulateWork(milliseconds: Int?) async throws {
    guard let milliseconds, milliseconds != 0 else { return }
    guard (0...3_600_000).contains(milliseconds) else {
        throw InvalidValueError(name: "delayMilliseconds", value: "\(milliseconds)", requirement: "from 0 to 3600000")
    }
    try await Task.sleep(for: .milliseconds(milliseconds))
}

/// Returns its input: the step of the peers' `ThreeSteps` benchmark workflow.
public struct Echo: Activity {
    public static let name = "diagnostics.echo"

    public init() {}

    public func run(context: ActivityContext, input: String) async throws -> String { input }
}

extension WorkflowRegistry {
    /// Registers the diagnostic activities.
    public mutating func registerDiagnosticActivities(effects: any DiagnosticEffects) {
        register(RecordDiagnosticEffect(effects: effects))
        register(UndoDiagnosticEffect(effects: effects))
        register(Echo())
    }
}
