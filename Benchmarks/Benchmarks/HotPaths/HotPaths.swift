import Benchmark
import Foundation
import WorkflowRuntime

/// Keel's hot paths, measured with ordo-one/benchmark: replaying a long history, encoding and
/// decoding a payload, and one workflow task claimed and completed on each backend (PostgreSQL
/// when `KEEL_BENCH_POSTGRES_URL` names a server).
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        warmupIterations: 5, maxDuration: .seconds(5), maxIterations: 100_000)

    let replay = Prepared<ReplayFixture>()
    Benchmark(
        "Replay a \(ReplayFixture.eventCount)-event history",
        configuration: .init(setup: { replay.set(try await ReplayFixture.make()) })
    ) { benchmark in
        let fixture = replay.value
        for _ in benchmark.scaledIterations {
            try fixture.replayer.replay(fixture.history)
        }
    }

    Benchmark("Encode a deal payload") { benchmark in
        let deal = Deal.sample
        for _ in benchmark.scaledIterations {
            blackHole(try Payload.encode(deal))
        }
    }

    let encoded = Prepared<Payload>()
    Benchmark(
        "Decode a deal payload",
        configuration: .init(setup: { encoded.set(try Payload.encode(Deal.sample)) })
    ) { benchmark in
        let payload = encoded.value
        for _ in benchmark.scaledIterations {
            blackHole(try payload.decode(as: Deal.self))
        }
    }

    for backend in RoundTripBackend.available() {
        let session = Prepared<WorkerSession>()
        Benchmark(
            "Start, claim and complete a one-task workflow (\(backend.label))",
            configuration: .init(
                setup: { session.set(try await WorkerSession.open(url: try backend.makeDatabaseURL())) },
                teardown: { await session.value.close() })
        ) { benchmark in
            let client = session.value.client
            for _ in benchmark.scaledIterations {
                let handle = try await client.start(
                    Immediate.self, id: "immediate-\(UUID().uuidString)", input: "done")
                blackHole(try await client.result(of: handle, as: Immediate.self))
            }
        }
    }
}
