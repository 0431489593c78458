import ArgumentParser
import Foundation
import KeelCLI
import Logging
import WorkflowRuntime
import Workflows

/// `worker bench W1|W2|W3|W4|W4S|W5`: the peers' workloads against a worker in this process, or
/// (`--separate-worker`) in a `worker run` child process with the bench only a client; prints one
/// JSON record.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract:
            "Run a benchmark workload (W1 throughput, W2 latency, W3 signal latency, W4 timer lateness, W4S "
            + "schedule tick lateness, W5 many waiting workflows) and print one JSON line in the peers' record "
            + "format."
    )

    enum Workload: String, ExpressibleByArgument, CaseIterable {
        case W1, W2, W3, W4, W4S, W5
    }

    @Argument(help: "W1, W2, W3, W4, W4S or W5.")
    var workload: Workload

    @Option(
        help: "Workflows (default: 1000 for W1, 100 for W2 and W3, 200 for W4, 30 ticks for W4S, 10000 for W5).")
    var n: Int?

    @Option(
        help: "Database URL (default: a new SQLite file in a temporary directory; every run starts on an empty store).")
    var database: String?

    @Flag(
        help:
            ArgumentHelp(
                "Run the worker as a separate `worker run` process (the shape Temporal is measured in); the bench "
                    + "is then only a client, and W5 reports that process's memory. The record's tag says so."))
    var separateWorker = false

    @Option(
        help:
            ArgumentHelp(
                "With --separate-worker: milliseconds between the worker's and the client's polls for each other's "
                    + "writes (default: 10 on SQLite, which has no notifications across processes; 100 on "
                    + "PostgreSQL, whose LISTEN/NOTIFY wakes both at once)."))
    var pollIntervalMs: Int?

    @Option(help: "Append the record to this file too (the peers' results.jsonl).")
    var results: String?

    func run() async throws {
        let count = n ?? [.W1: 1000, .W4: 200, .W4S: 30, .W5: 10_000][workload] ?? 100
        guard count > 0 else { throw ValidationError("--n must be positive") }
        if let pollIntervalMs, !(1...10_000).contains(pollIntervalMs) {
            throw ValidationError("--poll-interval-ms must be from 1 to 10000, got \(pollIntervalMs)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "keel-bench-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = database ?? "sqlite:\(directory.appendingPathComponent("bench.sqlite").path)"
        let location = try StoreLocation(url: url)
        let backend =
            switch location {
            case .sqlite: "sqlite-file"
            case .postgres: "postgres"
            }

        var logger = Logger(label: "keel.bench")
        logger.logLevel = .warning
        let metrics = try await location.withStore(logger: logger) { store in
            let setup = SetupTimer()
            try await store.migrate()
            let registry = try WorkerRegistry.make(for: WorkflowDatabase(store: store))
            let client = WorkflowClient(store: store, registry: registry)
            guard separateWorker else {
                return try await runInProcess(count, client, store: store, registry: registry, setup, logger: logger)
            }
            let poll = pollIntervalMs ?? (backend == "postgres" ? 100 : 10)
            var metrics = try await runWithSeparateWorker(
                count, client, databaseURL: url, pollIntervalMs: poll, setup,
                logPath: directory.appendingPathComponent("worker.log").path)
            metrics["poll_ms"] = Double(poll)
            return metrics
        }
        var record = BenchmarkRecord(backend: backend, workload: workload.rawValue, n: count, metrics: metrics)
        if separateWorker { record.tag = "separate-worker" }
        let line = try record.jsonLine()
        print(line)
        if let results {
            let url = URL(fileURLWithPath: results)
            if !FileManager.default.fileExists(atPath: results) {
                _ = FileManager.default.createFile(atPath: results, contents: nil)
            }
            let handle = try FileHandle(forWritingTo: url)
            handle.seekToEndOfFile()
            handle.write(Data((line + "\n").utf8))
            try handle.close()
        }
    }
}

extension BenchCommand {
    /// Measures the set-up: from the start to the workload's first step.
    struct SetupTimer {
        let start = ContinuousClock.now

        func seconds() -> Double { ((ContinuousClock.now - start).seconds * 1000).rounded() / 1000 }
    }

    /// The workload with a worker in this process: the client starts runs on it eagerly and
    /// hears of their close without polling.
    private func runInProcess(
        _ count: Int, _ client: WorkflowClient, store: WorkflowStore, registry: WorkflowRegistry, _ setup: SetupTimer,
        logger: Logger
    ) async throws -> [String: Double] {
        let worker = Worker(
            store: store, registry: registry,
            configuration: WorkerConfiguration(activityTaskSlots: 1000, pollInterval: .milliseconds(100)),
            logger: logger)
        var client = client
        client.pollInterval = .seconds(1)
        client.localWorker = worker
        let setupSeconds = setup.seconds()
        let workloads = Workloads(client: client, worker: .current)
        let workload = self.workload
        var metrics = try await withThrowingTaskGroup(of: [String: Double]?.self) { group in
            group.addTask {
                try await worker.run()
                return nil
            }
            defer { worker.stop() }
            // The workload starts on a serving worker: runs started before it serves are not
            // started eagerly, and their first timers or signals would find them out of its cache.
            let serving = ContinuousClock.now + .seconds(30)
            while !worker.isRunning {
                guard ContinuousClock.now < serving else {
                    throw BenchmarkError("the worker did not start serving within 30 s")
                }
                try await Task.sleep(for: .milliseconds(1))
            }
            return try await workloads.run(workload, n: count)
        }
        metrics["setup_s"] = setupSeconds
        return metrics
    }

    /// The workload with the worker a `worker run` child process: the bench only writes and reads
    /// the database. One warm-up run, not counted, waits until the worker serves. On SQLite each
    /// side finds the other's writes by polling, which costs the idle worker CPU (about a fifth of
    /// a core at 10 ms in a debug build); W5 measures that load first and waits for the worker to
    /// return to it.
    private func runWithSeparateWorker(
        _ count: Int, _ client: WorkflowClient, databaseURL: String, pollIntervalMs: Int, _ setup: SetupTimer,
        logPath: String
    ) async throws -> [String: Double] {
        let worker = try await WorkerProcess(
            databaseURL: databaseURL, logPath: logPath,
            options: ["--activity-slots", "1000", "--poll-interval-ms", "\(pollIntervalMs)", "--log-level", "warning"])
        var client = client
        client.pollInterval = .milliseconds(pollIntervalMs)
        var metrics: [String: Double]
        do {
            let warmUp = try await client.start(
                DiagnosticThreeSteps.self, id: "bench-warm-up-\(UInt32.random(in: 0...UInt32.max))", input: "warm")
            _ = try await client.result(of: warmUp, as: DiagnosticThreeSteps.self, timeout: .seconds(60))
            var usage = ProcessUsage(pid: worker.pid)
            if workload == .W5 { try await usage.measureIdleLoad() }
            let setupSeconds = setup.seconds()
            metrics = try await Workloads(client: client, worker: usage).run(workload, n: count)
            metrics["setup_s"] = setupSeconds
        } catch {
            await worker.kill()
            throw BenchmarkError("\(error); the worker process's log ends: \(Self.tail(ofLog: logPath))")
        }
        let status = try await worker.stop()
        guard status == 0 else {
            throw BenchmarkError("the worker process exited with \(status): \(Self.tail(ofLog: logPath))")
        }
        return metrics
    }

    /// The last lines of the worker's log (its directory is removed when the bench ends).
    private static func tail(ofLog path: String) -> String {
        let log = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let lines = log.split(separator: "\n").suffix(10).joined(separator: "\n")
        return lines.isEmpty ? "(empty)" : lines
    }
}
