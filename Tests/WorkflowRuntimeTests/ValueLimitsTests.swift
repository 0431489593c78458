import Foundation
import Testing
import WorkflowRuntime
import WorkflowTesting

/// Which duration or option ``ExtremeValues`` breaks, and how.
struct ExtremeCase: Codable, Sendable, CustomTestStringConvertible {
    enum Operation: String, Codable, Sendable {
        case activity, compensation, sleep, sleepUntil, signalTimeout, approvalTimeout
    }

    var operation: Operation
    /// For `activity` and `compensation`: the option, e.g. `startToCloseTimeout`.
    var option: String?
    /// Seconds (for `sleepUntil`, since 1970), as text: JSON cannot carry NaN or infinity.
    var value: String

    init(operation: Operation, option: String? = nil, seconds: Double) {
        self.operation = operation
        self.option = option
        self.value = "\(seconds)"
    }

    var seconds: Double { Double(value) ?? .nan }

    var testDescription: String { "\(operation.rawValue) \(option ?? "") \(value)" }
}

/// Issues one operation with an extreme value; the engine must throw ``InvalidValueError`` into the
/// code before anything is scheduled.
struct ExtremeValues: Workflow {
    static let name = "test.extreme-values"

    func run(context: WorkflowContext, input: ExtremeCase) async throws -> String {
        let huge: Duration = input.seconds.isFinite ? .seconds(Int64(max(-9e18, min(input.seconds, 9e18)))) : .zero
        switch input.operation {
        case .activity, .compensation:
            var options = ActivityOptions()
            switch input.option {
            case "startToCloseTimeout": options.startToCloseTimeout = huge
            case "scheduleToCloseTimeout": options.scheduleToCloseTimeout = huge
            case "heartbeatTimeout": options.heartbeatTimeout = huge
            case "initialInterval": options.retryPolicy.initialInterval = huge
            case "maximumInterval": options.retryPolicy.maximumInterval = huge
            case "backoffCoefficient": options.retryPolicy.backoffCoefficient = input.seconds
            case "maximumAttempts": options.retryPolicy.maximumAttempts = Int(input.seconds)
            default: Issue.record("unknown option \(input.option ?? "nil")")
            }
            if input.operation == .compensation {
                try context.addCompensation(Uppercase.self, "undo", options: options)
                return "registered"
            }
            return try await context.execute(Uppercase.self, "step", options: options)
        case .sleep:
            try await context.sleep(for: huge)
        case .sleepUntil:
            try await context.sleep(until: Date(timeIntervalSince1970: input.seconds))
        case .signalTimeout:
            _ = try await context.waitForSignal("go", as: String.self, timeout: huge)
        case .approvalTimeout:
            _ = try await context.requestApproval("x", summary: "x", payload: "x", approvers: ["ada"], timeout: huge)
        }
        return "done"
    }
}

@Suite("Durations and options from outside are checked where they enter")
struct ValueLimitsTests {
    static let refused: [ExtremeCase] = [
        .init(operation: .activity, option: "startToCloseTimeout", seconds: 0),
        .init(operation: .activity, option: "startToCloseTimeout", seconds: -1),
        .init(operation: .activity, option: "startToCloseTimeout", seconds: 1e10),
        .init(operation: .activity, option: "scheduleToCloseTimeout", seconds: 9e18),
        .init(operation: .activity, option: "heartbeatTimeout", seconds: 0),
        .init(operation: .activity, option: "initialInterval", seconds: 0),
        .init(operation: .activity, option: "initialInterval", seconds: 1e12),
        .init(operation: .activity, option: "maximumInterval", seconds: 1e12),
        .init(operation: .activity, option: "backoffCoefficient", seconds: .nan),
        .init(operation: .activity, option: "backoffCoefficient", seconds: .infinity),
        .init(operation: .activity, option: "backoffCoefficient", seconds: 0.5),
        .init(operation: .activity, option: "maximumAttempts", seconds: 0),
        .init(operation: .compensation, option: "startToCloseTimeout", seconds: 0),
        .init(operation: .sleep, seconds: 1e10),
        .init(operation: .sleep, seconds: 9e18),
        .init(operation: .sleepUntil, seconds: .nan),
        .init(operation: .sleepUntil, seconds: 1e300),
        .init(operation: .sleepUntil, seconds: .infinity),
        .init(operation: .signalTimeout, seconds: 1e10),
        .init(operation: .approvalTimeout, seconds: 0),
        .init(operation: .approvalTimeout, seconds: 1e10),
    ]

    @Test("an extreme duration or option fails the run with InvalidValue naming it; nothing is scheduled",
          arguments: StoreBackend.allCases, refused)
    func extremeValueFailsTheRun(backend: StoreBackend, extreme: ExtremeCase) async throws {
        try await backend.withStore { store in
            var registry = testRegistry()
            registry.register(ExtremeValues.self)
            let env = TestWorkflowEnvironment(registry: registry, store: store)
            defer { env.shutdown() }
            let handle = try await env.client.start(ExtremeValues.self, id: "extreme", input: extreme)
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .failed)
            #expect(run.failure?.type == "InvalidValue")
            #expect(run.failure?.nonRetryable == true)
            if let option = extreme.option { #expect(run.failure?.message.contains(option) == true, "\(run.failure?.message ?? "")") }
            let kinds = try await store.history(runID: handle.runID).map(\.kind.name)
            #expect(kinds == ["workflowStarted", "workflowFailed"], "nothing may be scheduled: \(kinds)")
        }
    }

    @Test("values at the limits are accepted: a sleep into the past returns at once, 100 years is the longest timer")
    func valuesWithinLimits() async throws {
        var registry = testRegistry()
        registry.register(ExtremeValues.self)
        let env = try await TestWorkflowEnvironment(registry: registry)
        defer { env.shutdown() }
        let past = try await env.client.start(ExtremeValues.self, id: "past", input: .init(operation: .sleepUntil, seconds: 0))
        #expect(try await env.result(of: past, as: ExtremeValues.self) == "done")
        let longest = try await env.client.start(ExtremeValues.self, id: "longest",
                                                 input: .init(operation: .sleep, seconds: Duration.longestAccepted.seconds))
        try await env.runUntilIdle()
        let timers = try await env.store.pendingWork(runID: longest.runID).timers
        #expect(timers.count == 1)
        #expect(timers.first.map { $0.fireAt.timeIntervalSince(env.clock.now()) } == Duration.longestAccepted.seconds)
    }

    @Test("Duration.checked: finite numbers from 0 (or above 0) to 100 years")
    func checkedSeconds() throws {
        #expect(try Duration.checked(seconds: 1.5, "x") == .milliseconds(1500))
        #expect(try Duration.checked(seconds: 0, "x") == .zero)
        for bad in [Double.nan, .infinity, -.infinity, -1, 1e10, 1e308, Duration.longestAccepted.seconds + 1] {
            #expect(throws: InvalidValueError.self) { try Duration.checked(seconds: bad, "x") }
        }
        #expect(throws: InvalidValueError.self) { try Duration.checked(seconds: 0, "x", allowsZero: false) }
        let error = try #require(throws: InvalidValueError.self) { try Duration.checked(seconds: .nan, "deadlineSeconds") }
        #expect(error.description == "deadlineSeconds must be from 0 to 3153600000 seconds (100 years), got nan")
    }

    @Test("backoff after a huge attempt count is capped, never a trap")
    func backoffSaturates() {
        let policy = RetryPolicy(initialInterval: .seconds(1), backoffCoefficient: 1000, maximumInterval: .seconds(3600))
        #expect(policy.delay(afterAttempt: Int.max) == .seconds(3600))
        let stored = RetryPolicy(initialInterval: .seconds(Int64.max / 2), backoffCoefficient: 2)
        #expect(stored.delay(afterAttempt: 5) == Duration.longestAccepted)
    }
}
