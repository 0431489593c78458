import Activities
import Foundation
import WorkflowRuntime

/// `diagnostics.sequence`: N activities, one after the other (or all at once with `parallel`), each
/// recording its idempotency key in `diagnostic_effects`, so exactly-once effects can be checked
/// from outside.
public struct DiagnosticSequence: Workflow {
    public static let name = "diagnostics.sequence"

    public struct Input: Codable, Sendable {
        public var steps: Int
        /// Milliseconds each step works before recording its effect.
        public var stepDelayMilliseconds: Int?
        /// Lease of one step's attempt; a crashed worker's step is retried after it.
        public var stepTimeoutSeconds: Double?
        /// Run the steps at once (`context.parallel`) instead of one after the other.
        public var parallel: Bool?
        /// Milliseconds of durable sleep (a timer) before each step after the first, one after the other.
        public var pauseMilliseconds: Int?

        public init(
            steps: Int, stepDelayMilliseconds: Int? = nil, stepTimeoutSeconds: Double? = nil, parallel: Bool? = nil,
            pauseMilliseconds: Int? = nil
        ) {
            self.steps = steps
            self.stepDelayMilliseconds = stepDelayMilliseconds
            self.stepTimeoutSeconds = stepTimeoutSeconds
            self.parallel = parallel
            self.pauseMilliseconds = pauseMilliseconds
        }
    }

    public struct Output: Codable, Sendable {
        public var steps: Int
        /// Attempts each step's effect saw (more than 1 where a crash or failure forced a retry).
        public var attempts: [Int]

        public init(steps: Int, attempts: [Int]) {
            self.steps = steps
            self.attempts = attempts
        }
    }

    public init() {}

    public func run(context: WorkflowContext, input: Input) async throws -> Output {
        try DiagnosticInput.checkSteps(input.steps)
        try DiagnosticInput.checkDelay(input.stepDelayMilliseconds, "stepDelayMilliseconds")
        try DiagnosticInput.checkDelay(input.pauseMilliseconds, "pauseMilliseconds")
        let options = ActivityOptions(
            retryPolicy: RetryPolicy(initialInterval: .milliseconds(200), maximumInterval: .seconds(5)),
            startToCloseTimeout: try .checked(
                seconds: input.stepTimeoutSeconds ?? 30, "stepTimeoutSeconds", allowsZero: false))
        let delay = input.stepDelayMilliseconds
        let step: @Sendable (Int) async throws -> Int = { number in
            try await context.execute(
                RecordDiagnosticEffect.self, .init(step: number, delayMilliseconds: delay), options: options
            ).attempts
        }
        let numbers = (0..<input.steps).map { $0 + 1 }
        if input.parallel == true {
            return Output(steps: input.steps, attempts: try await context.parallel(numbers, step))
        }
        var attempts: [Int] = []
        for number in numbers {
            if number > 1, let pause = input.pauseMilliseconds {
                try await context.sleep(for: .milliseconds(pause))
            }
            attempts.append(try await step(number))
        }
        return Output(steps: input.steps, attempts: attempts)
    }
}

/// `diagnostics.wait-signal`: waits for the signal `go` and returns its payload.
public struct DiagnosticWaitSignal: Workflow {
    public static let name = "diagnostics.wait-signal"

    public init() {}

    public func run(context: WorkflowContext, input: JSONValue) async throws -> JSONValue {
        try await context.waitForSignal("go", as: JSONValue.self)
    }
}

/// `diagnostics.sleep`: sleeps durably for `seconds` and reports how late it woke.
public struct DiagnosticSleep: Workflow {
    public static let name = "diagnostics.sleep"

    public struct Input: Codable, Sendable {
        public var seconds: Double
        public init(seconds: Double) { self.seconds = seconds }
    }

    public struct Output: Codable, Sendable {
        public var intendedWake: Date
        public var wokeAt: Date
    }

    public init() {}

    public func run(context: WorkflowContext, input: Input) async throws -> Output {
        let intended = context.now.addingTimeInterval(try Duration.checked(seconds: input.seconds, "seconds").seconds)
        try await context.sleep(until: intended)
        return Output(intendedWake: intended, wokeAt: context.now)
    }
}

/// `diagnostics.three-steps`: the peers' `ThreeSteps` benchmark — three sequential activities
/// that return their input; returns the last result.
public struct DiagnosticThreeSteps: Workflow {
    public static let name = "diagnostics.three-steps"

    public init() {}

    public func run(context: WorkflowContext, input: String) async throws -> String {
        var result = input
        for _ in 0..<3 {
            result = try await context.execute(Echo.self, result)
        }
        return result
    }
}

/// Checks of the numbers the diagnostic workflows take, so extreme inputs fail the run with a
/// message naming the field (type `InvalidValue`) instead of reaching arithmetic that traps.
enum DiagnosticInput {
    /// Most steps one run may take (a longer run belongs in continue-as-new).
    static let maximumSteps = 10_000
    /// Longest simulated work time of one step, in milliseconds (an hour).
    static let maximumDelayMilliseconds = 3_600_000

    static func checkSteps(_ steps: Int) throws {
        guard (0...maximumSteps).contains(steps) else {
            throw InvalidValueError(name: "steps", value: "\(steps)", requirement: "from 0 to \(maximumSteps)")
        }
    }

    static func checkDelay(_ milliseconds: Int?, _ name: String) throws {
        guard let milliseconds else { return }
        guard (0...maximumDelayMilliseconds).contains(milliseconds) else {
            throw InvalidValueError(
                name: name, value: "\(milliseconds)", requirement: "from 0 to \(maximumDelayMilliseconds) milliseconds")
        }
    }
}

extension WorkflowRegistry {
    /// Registers the diagnostic workflows.
    public mutating func registerDiagnosticWorkflows() {
        register(DiagnosticSequence.self)
        register(DiagnosticWaitSignal.self)
        register(DiagnosticSleep.self)
        register(DiagnosticThreeSteps.self)
        register(DiagnosticApproval.self)
        register(DiagnosticSaga.self)
        register(DiagnosticCounter.self)
        register(DiagnosticParent.self)
        register(DiagnosticSend.self)
    }
}
