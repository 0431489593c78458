import ArgumentParser
import Foundation
import KeelCLI
import Logging
import WorkflowRuntime

/// `worker bench W1|W2|W3|W4|W4S|W5`: the peers' workloads against an in-process worker; prints one JSON record.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract:
            "Run a benchmark workload (W1 throughput, W2 latency, W3 signal latency, W4 timer lateness, W4S "
            + "schedule tick lateness, W5 many waiting workflows) with an in-process worker and print one JSON "
            + "line in the peers' record format."
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

    @Option(help: "Append the record to this file too (the peers' results.jsonl).")
    var results: String?

    func run() async throws {
        let count = n ?? [.W1: 1000, .W4: 200, .W4S: 30, .W5: 10_000][workload] ?? 100
        guard count > 0 else { throw ValidationError("--n must be positive") }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "keel-bench-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let location = try StoreLocation(
            url: database ?? "sqlite:\(directory.appendingPathComponent("bench.sqlite").path)")

        var logger = Logger(label: "keel.bench")
        logger.logLevel = .warning
        let workload = self.workload
        let metrics = try await location.withStore(logger: logger) { store in
            let setupStart = ContinuousClock.now
            try await store.migrate()
            let registry = try WorkerRegistry.make(for: WorkflowDatabase(store: store))
            let worker = Worker(
                store: store, registry: registry,
                configuration: WorkerConfiguration(activityTaskSlots: 1000, pollInterval: .milliseconds(100)),
                logger: logger)
            var client = WorkflowClient(store: store, registry: registry)
            client.pollInterval = .seconds(1)
            client.localWorker = worker
            let setupSeconds = (ContinuousClock.now - setupStart).seconds
            let workloads = Workloads(client: client)
            var metrics = try await withThrowingTaskGroup(of: [String: Double]?.self) { group in
                group.addTask {
                    try await worker.run()
                    return nil
                }
                defer { worker.stop() }
                switch workload {
                case .W1: return try await workloads.throughput(n: count)
                case .W2: return try await workloads.latency(n: count)
                case .W3: return try await workloads.signalLatency(n: count)
                case .W4: return try await workloads.timerLateness(n: count)
                case .W4S: return try await workloads.tickLateness(n: count)
                case .W5: return try await workloads.manyWaiting(n: count)
                }
            }
            metrics["setup_s"] = (setupSeconds * 1000).rounded() / 1000
            return metrics
        }
        let backend =
            switch location {
            case .sqlite: "sqlite-file"
            case .postgres: "postgres"
            }
        let line = try BenchmarkRecord(backend: backend, workload: workload.rawValue, n: count, metrics: metrics)
            .jsonLine()
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
