import Foundation
import Synchronization
import WorkflowRuntime

/// Activities and workflows written for the engine's own tests.

/// Counts calls per idempotency key and fails the first `failures` attempts of each key.
final class FlakyService: Sendable {
    struct Call: Sendable, Equatable {
        var key: String
        var attempt: Int
        var at: Date
    }

    let failures: Int
    let errorType: String
    private let log = Mutex<[Call]>([])

    init(failures: Int, errorType: String = "Transient") {
        self.failures = failures
        self.errorType = errorType
    }

    var calls: [Call] { log.withLock { $0 } }

    func call(key: String, attempt: Int, at: Date) throws -> String {
        log.withLock { $0.append(Call(key: key, attempt: attempt, at: at)) }
        if attempt <= failures {
            throw ApplicationError("attempt \(attempt) failed", type: errorType)
        }
        return "ok after \(attempt)"
    }
}

struct FlakyActivity: Activity {
    static let name = "test.flaky"
    let service: FlakyService

    func run(context: ActivityContext, input: String) async throws -> String {
        try service.call(key: context.idempotencyKey, attempt: context.attempt, at: context.now)
    }
}

struct Uppercase: Activity {
    static let name = "test.uppercase"
    func run(context: ActivityContext, input: String) async throws -> String { input.uppercased() }
}

/// Calls the flaky activity once with the retry policy from its input.
struct RetryingWorkflow: Workflow {
    static let name = "test.retrying"

    struct Input: Codable, Sendable {
        var maximumAttempts: Int?
        var nonRetryable: [String] = []
    }

    func run(context: WorkflowContext, input: Input) async throws -> String {
        let policy = RetryPolicy(initialInterval: .seconds(1), backoffCoefficient: 2, maximumInterval: .seconds(10),
                                 maximumAttempts: input.maximumAttempts, nonRetryableErrorTypes: input.nonRetryable)
        do {
            return try await context.execute(FlakyActivity.self, "x", options: ActivityOptions(retryPolicy: policy))
        } catch let failure as ActivityFailure {
            return "gave up after \(failure.attempts): \(failure.cause.type)"
        }
    }
}

/// Sleeps for a number of days, then uppercases its input.
struct LongSleep: Workflow {
    static let name = "test.long-sleep"

    struct Input: Codable, Sendable {
        var days: Int
        var text: String
    }

    struct Output: Codable, Sendable {
        var text: String
        var sleptSeconds: Double
    }

    func run(context: WorkflowContext, input: Input) async throws -> Output {
        let start = context.now
        try await context.sleep(for: .seconds(Int64(input.days) * 86_400))
        let text = try await context.execute(Uppercase.self, input.text)
        return Output(text: text, sleptSeconds: context.now.timeIntervalSince(start))
    }
}

/// Collects `count` signals named `item`, in order.
struct Collector: Workflow {
    static let name = "test.collector"

    func run(context: WorkflowContext, input: Int) async throws -> [String] {
        var items: [String] = []
        for _ in 0..<input {
            items.append(try await context.waitForSignal("item", as: String.self))
        }
        return items
    }
}

/// Waits for `go` at most `timeoutSeconds`; returns the payload or "timed out".
struct WaitWithTimeout: Workflow {
    static let name = "test.wait-with-timeout"

    func run(context: WorkflowContext, input: Double) async throws -> String {
        try await context.waitForSignal("go", as: String.self, timeout: .seconds(input)) ?? "timed out"
    }
}

/// Starts an hour's sleep and cancels it within the same workflow task, then waits for "go": the
/// task's commit holds both the timer's start and its cancellation.
struct SleepCancelledAtOnce: Workflow {
    static let name = "test.sleep-cancelled-at-once"

    func run(context: WorkflowContext, input: String) async throws -> String {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await context.sleep(for: .seconds(3600)) }
            await Task.yield()  // the branch runs until its sleep waits
            group.cancelAll()
        }
        return try await context.waitForSignal("go", as: String.self)
    }
}

/// Runs activities in parallel with `async let` and a task group; uses random, uuid and sideEffect.
struct ParallelWorkflow: Workflow {
    static let name = "test.parallel"

    struct Output: Codable, Sendable, Equatable {
        var pair: [String]
        var group: [String]
        var random: Int
        var uuid: String
        var sideEffect: Int
    }

    func run(context: WorkflowContext, input: [String]) async throws -> Output {
        async let first = context.execute(Uppercase.self, input[0])
        async let second = context.execute(Uppercase.self, input[1])
        let pair = try await [first, second]
        let group = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for (index, word) in input.enumerated() {
                group.addTask { (index, try await context.execute(Uppercase.self, word)) }
            }
            var results: [(Int, String)] = []
            for try await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }.map(\.1)
        }
        var generator = context.random
        let random = Int.random(in: 0..<1_000_000, using: &generator)
        let sideEffect = try await context.sideEffect { 42 }
        return Output(pair: pair, group: group, random: random, uuid: context.uuid().uuidString, sideEffect: sideEffect)
    }
}

/// Sleeps an hour, then calls an activity; cancellation is observed while sleeping.
struct CancellableWorkflow: Workflow {
    static let name = "test.cancellable"

    func run(context: WorkflowContext, input: Empty) async throws -> String {
        try await context.sleep(for: .seconds(3600))
        return try await context.execute(Uppercase.self, "done")
    }
}

/// Catches cancellation and reports it as its result.
struct CleanupOnCancel: Workflow {
    static let name = "test.cleanup-on-cancel"

    func run(context: WorkflowContext, input: Empty) async throws -> String {
        do {
            _ = try await context.waitForSignal("never", as: String.self)
            return "signalled"
        } catch let error as WorkflowCancelledError {
            return "cleaned up after: \(error.reason ?? "no reason")"
        }
    }
}

func testRegistry(flaky: FlakyService = FlakyService(failures: 0)) -> WorkflowRegistry {
    var registry = WorkflowRegistry()
    registry.register(RetryingWorkflow.self)
    registry.register(LongSleep.self)
    registry.register(Collector.self)
    registry.register(WaitWithTimeout.self)
    registry.register(SleepCancelledAtOnce.self)
    registry.register(ParallelWorkflow.self)
    registry.register(CancellableWorkflow.self)
    registry.register(CleanupOnCancel.self)
    registry.register(FlakyActivity(service: flaky))
    registry.register(Uppercase())
    return registry
}
