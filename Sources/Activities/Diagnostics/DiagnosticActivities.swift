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
        if let delay = input.delayMilliseconds, delay > 0 {
            try await Task.sleep(for: .milliseconds(delay))
        }
        let attempts = try await effects.record(idempotencyKey: context.idempotencyKey, workflowID: context.workflowID, step: input.step)
        return Output(step: input.step, attempts: attempts)
    }
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
        register(Echo())
    }
}
