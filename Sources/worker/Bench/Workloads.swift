import Foundation
import WorkflowRuntime
import Workflows

/// The peers' workloads W1-W5 (README: Performance), run through `client` against a worker in
/// this process or in a separate one.
struct Workloads {
    static let startConcurrency = 100
    static let resultConcurrency = 200

    let client: WorkflowClient
    /// The process the worker runs in: W5 reports its memory.
    let worker: ProcessUsage
    let prefix = "bench-\(UInt32.random(in: 0...UInt32.max))"

    /// Runs `workload` with `n` workflows (or ticks). - Returns: its metrics.
    func run(_ workload: BenchCommand.Workload, n: Int) async throws -> [String: Double] {
        switch workload {
        case .W1: try await throughput(n: n)
        case .W2: try await latency(n: n)
        case .W3: try await signalLatency(n: n)
        case .W4: try await timerLateness(n: n)
        case .W4S: try await tickLateness(n: n)
        case .W5: try await manyWaiting(n: n)
        }
    }

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

    /// W5: N `WaitSignal` runs started as fast as 100 in flight allow (at most 300 s); then,
    /// once the worker's process is quiet (under 5 % of a core above its idle load for 2 s, at
    /// most 60 s), its resident memory; then all signalled (100 in flight) while every result is
    /// awaited.
    func manyWaiting(n: Int) async throws -> [String: Double] {
        let begin = ContinuousClock.now
        var handles: [WorkflowHandle] = []
        handles.reserveCapacity(n)
        try await withThrowingTaskGroup(of: WorkflowHandle.self) { group in
            for index in 0..<n where ContinuousClock.now - begin < .seconds(300) {
                if index >= Self.startConcurrency, let handle = try await group.next() { handles.append(handle) }
                group.addTask {
                    try await client.start(DiagnosticWaitSignal.self, id: "\(prefix)-w5-\(index)", input: .null)
                }
            }
            for try await handle in group { handles.append(handle) }
        }
        let startSeconds = (ContinuousClock.now - begin).seconds
        let settleSeconds = try await worker.waitUntilQuiet()
        let rss = worker.residentMegabytes()
        let drainBegin = ContinuousClock.now
        try await forEach(Array(handles.enumerated()), concurrency: Self.startConcurrency) { index, handle in
            try await client.signal(workflowID: handle.workflowID, name: "go", value: JSONValue.number(Double(index)))
            let result = try await client.result(of: handle, as: DiagnosticWaitSignal.self)
            guard result == .number(Double(index)) else {
                throw BenchmarkError("W5 run \(handle.workflowID) returned \(result)")
            }
        }
        let drain = (ContinuousClock.now - drainBegin).seconds
        return [
            "started": Double(handles.count), "start_s": startSeconds,
            "starts_per_s": Double(handles.count) / startSeconds,
            "settle_s": settleSeconds, "worker_rss_mb": rss, "drain_s": drain,
            "drain_per_s": Double(handles.count) / drain,
        ].mapValues { ($0 * 1000).rounded() / 1000 }
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

/// CPU time and resident memory of the process that runs the worker, from `/proc`.
struct ProcessUsage: Sendable {
    /// The process's folder in `/proc`.
    private let directory: String
    /// Share of a core the process uses with no work (a separate worker polling for it); "quiet"
    /// means back to this.
    private(set) var idleLoad = 0.0

    /// This process (the worker runs in it).
    static let current = ProcessUsage(directory: "/proc/self")

    private init(directory: String) { self.directory = directory }

    /// The process `pid` (a separate worker).
    init(pid: Int32) { directory = "/proc/\(pid)" }

    /// CPU seconds (user + system) used so far.
    func cpuSeconds() -> Double {
        guard let stat = try? String(contentsOfFile: "\(directory)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// VmRSS in MiB.
    func residentMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "\(directory)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kilobytes / 1024
    }

    /// Measures ``idleLoad`` over one second, while no work waits.
    mutating func measureIdleLoad() async throws {
        let before = cpuSeconds()
        try await Task.sleep(for: .seconds(1))
        idleLoad = cpuSeconds() - before
    }

    /// Waits until the process used under 5 % of a core above its ``idleLoad`` for 2 s (at most
    /// 60 s). - Returns: the seconds waited.
    func waitUntilQuiet() async throws -> Double {
        let begin = ContinuousClock.now
        var quietSince: ContinuousClock.Instant?
        var last = cpuSeconds()
        while ContinuousClock.now - begin < .seconds(60) {
            try await Task.sleep(for: .milliseconds(250))
            let now = cpuSeconds()
            let busy = (now - last) / 0.25
            last = now
            if busy < idleLoad + 0.05 {
                let since = quietSince ?? ContinuousClock.now
                quietSince = since
                if ContinuousClock.now - since >= .seconds(2) { break }
            } else {
                quietSince = nil
            }
        }
        return (ContinuousClock.now - begin).seconds
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
