import Foundation
import KeelTestSupport
import Testing

/// `worker bench`: a short run of each mode prints one record in the peers' format, its results checked.
@Suite("worker bench: in-process and separate-worker records on both backends", .serialized)
struct BenchCommandTests {
    struct Record: Decodable {
        var peer: String
        var backend: String
        var workload: String
        var n: Int
        var metrics: [String: Double]
        var tag: String
    }

    static func bench(_ arguments: [String]) async throws -> Record {
        let output = try await WorkerBinary.run(["bench"] + arguments)
        try #require(output.status == 0, "worker bench \(arguments) failed: \(output.stderr)")
        let line = try #require(output.stdout.split(separator: "\n").last, "no record printed")
        return try JSONDecoder().decode(Record.self, from: Data(line.utf8))
    }

    @Test("W2 and W5 on SQLite, with the worker in the bench's process and as a separate `worker run`")
    func sqliteModes() async throws {
        for separate in [false, true] {
            let flags = separate ? ["--separate-worker"] : []
            let w2 = try await Self.bench(["W2", "--n", "5"] + flags)
            #expect(w2.peer == "keel" && w2.backend == "sqlite-file" && w2.workload == "W2" && w2.n == 5)
            #expect(w2.metrics["count"] == 5)
            #expect((w2.metrics["p50_ms"] ?? 0) > 0 && (w2.metrics["p50_ms"] ?? 0) <= (w2.metrics["p99_ms"] ?? 0))
            #expect(w2.tag == (separate ? "separate-worker" : ""))
            #expect((w2.metrics["poll_ms"] != nil) == separate, "a separate worker's poll interval is recorded")
        }
        let w5 = try await Self.bench(["W5", "--n", "20", "--separate-worker"])
        #expect(w5.metrics["started"] == 20)
        #expect((w5.metrics["worker_rss_mb"] ?? 0) > 1, "the separate worker's memory, read from /proc")
    }

    @Test("W1 on PostgreSQL with a separate worker")
    func postgresSeparateWorker() async throws {
        let url = try await PostgresTestServer.freshDatabaseURL()
        let w1 = try await Self.bench(["W1", "--n", "30", "--separate-worker", "--database", url])
        #expect(w1.backend == "postgres" && w1.tag == "separate-worker" && w1.metrics["poll_ms"] == 100)
        #expect((w1.metrics["wf_per_s"] ?? 0) > 0)
    }

    @Test("a bad option is refused before anything runs")
    func badOptions() async throws {
        let zero = try await WorkerBinary.run(["bench", "W2", "--n", "0"])
        #expect(zero.status != 0 && zero.stderr.contains("--n must be positive"))
        let poll = try await WorkerBinary.run(["bench", "W2", "--separate-worker", "--poll-interval-ms", "0"])
        #expect(poll.status != 0 && poll.stderr.contains("--poll-interval-ms must be from 1 to 10000"))
    }
}
