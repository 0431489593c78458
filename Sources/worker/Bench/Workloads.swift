import Foundation
import WorkflowRuntime
import Workflows

/// The peers' workloads W1-W4 (README: Performance), run against an in-process worker.
struct Workloads {
    static let startConcurrency = 100
    static let resultConcurrency = 200

    let client: WorkflowClient
    let prefix = "bench-\(UInt32.random(in: 0...UInt32.max))"

    /// W1: start N `ThreeSteps` as fast as 100 in flight allow, then await every result.
    func throughput(n: Int) async throws -> [String: Double] {
        let begin = ContinuousClock.now
        var handles: [WorkflowHandle] = []
        handles.reserveCapacity(n)
        try await withThrowingTaskGroup(of: WorkflowHandle.self) { group in
            for index in 0..<n {
                if index >= Self.startConcurrency, let handle = try await group.next() { handles.append(handle) }
                group.addTask {
                    try await client.start(DiagnosticThreeSteps.self, id: "\(prefix)-w1-\(index)", input: "hello")
                }
            }
            for try await handle in group { handles.append(handle) }
        }
        let startSeconds = (ContinuousClock.now - begin).seconds
        try await forEach(handles, concurrency: Self.resultConcurrency) { handle in
            let result = try await client.result(of: handle, as: DiagnosticThreeSteps.self)
            guard result == "hello" else { throw BenchmarkError("W1 run \(handle.workflowID) returned \(result)") }
        }
        let wall = (ContinuousClock.now - begin).seconds
        return [
            "wall_s": wall, "start_s": startSeconds, "starts_per_s": Double(n) / startSeconds,
            "wf_per_s": Double(n) / wall, "act_per_s": Double(3 * n) / wall,
        ].mapValues { ($0 * 1000).rounded() / 1000 }
    }

    /// W2: `ThreeSteps` started and awaited one at a time; 5 warm-up runs are not counted.
    func latency(n: Int) async throws -> [String: Double] {
        var samples: [Double] = []
        for index in 0..<(5 + n) {
            let begin = ContinuousClock.now
            let handle = try await client.start(DiagnosticThreeSteps.self, id: "\(prefix)-w2-\(index)", input: "hello")
            let result = try await client.result(of: handle, as: DiagnosticThreeSteps.self)
            let elapsed = (ContinuousClock.now - begin).seconds * 1000
            guard result == "hello" else { throw BenchmarkError("W2 run \(handle.workflowID) returned \(result)") }
            if index >= 5 { samples.append(elapsed) }
        }
        return LatencySummary.metrics(samples)
    }

    /// W3: N `WaitSignal` runs wait; then, one at a time, signal `go` and await the result.
    func signalLatency(n: Int) async throws -> [String: Double] {
        var handles: [WorkflowHandle] = []
        for index in 0..<n {
            handles.append(try await client.start(DiagnosticWaitSignal.self, id: "\(prefix)-w3-\(index)", input: .null))
        }
        try await Task.sleep(for: .seconds(3))
        var samples: [Double] = []
        for (index, handle) in handles.enumerated() {
            let begin = ContinuousClock.now
            try await client.signal(workflowID: handle.workflowID, name: "go", value: JSONValue.number(Double(index)))
            let result = try await client.result(of: handle, as: DiagnosticWaitSignal.self)
            samples.append((ContinuousClock.now - begin).seconds * 1000)
            guard result == .number(Double(index)) else {
                throw BenchmarkError("W3 run \(handle.workflowID) returned \(result)")
            }
        }
        return LatencySummary.metrics(samples)
    }

    /// W4: N `diagnostics.sleep` runs of 2 s started together; lateness of each is the time its
    /// run closed (the commit of the task that woke) after its intended wake.
    func timerLateness(n: Int) async throws -> [String: Double] {
        var handles: [WorkflowHandle] = []
        try await withThrowingTaskGroup(of: WorkflowHandle.self) { group in
            for index in 0..<n {
                group.addTask {
                    try await client.start(DiagnosticSleep.self, id: "\(prefix)-w4-\(index)", input: .init(seconds: 2))
                }
            }
            for try await handle in group { handles.append(handle) }
        }
        var samples: [Double] = []
        for handle in handles {
            let output = try await client.result(of: handle, as: DiagnosticSleep.self, timeout: .seconds(60))
            let run = try await client.waitForClose(runID: handle.runID)
            guard let closed = run.closedAt else {
                throw BenchmarkError("W4 run \(handle.workflowID) has no close time")
            }
            samples.append(closed.timeIntervalSince(output.intendedWake) * 1000)
        }
        return LatencySummary.metrics(samples)
    }

    /// W4S: an every-second schedule of `diagnostics.three-steps` for N ticks; lateness of each
    /// tick is when its run was created (the commit that fired it) after the tick.
    func tickLateness(n: Int) async throws -> [String: Double] {
        let id = "\(prefix)-ticks"
        let first = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 2).rounded(.down))
        try await client.createSchedule(
            ScheduleDefinition(
                id: id, cron: try CronExpression("* * * * * *"), workflowType: DiagnosticThreeSteps.name,
                input: try Payload.encode("tick"), overlap: .allowAll, startAt: first,
                endAt: first.addingTimeInterval(Double(n - 1))))
        try await Task.sleep(for: .seconds(Double(n) + 2.5))
        let runs = try await client.list(RunQuery(searchAttributes: ["scheduleID": .string(id)], limit: n + 10))
        guard runs.count == n else { throw BenchmarkError("W4S fired \(runs.count) of \(n) ticks") }
        var samples: [Double] = []
        for run in runs {
            guard let tick = try? Date(String(run.workflowID.split(separator: "@").last ?? ""), strategy: .iso8601)
            else { throw BenchmarkError("W4S run \(run.workflowID) names no tick") }
            samples.append(run.createdAt.timeIntervalSince(tick) * 1000)
        }
        return LatencySummary.metrics(samples)
    }

    private func forEach<T: Sendable>(
        _ items: [T], concurrency: Int, _ body: @escaping @Sendable (T) async throws -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, item) in items.enumerated() {
                if index >= concurrency { try await group.next() }
                group.addTask { try await body(item) }
            }
            try await group.waitForAll()
        }
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
