import Foundation
import KeelCLI
import KeelTestSupport
import Testing
import WorkflowRuntime

@Suite("Schedules fired by two worker processes, one SIGKILLed mid-way: every tick once, none missed", .serialized)
struct ScheduleFiringTests {
    enum Backend: String, CaseIterable { case sqlite, postgres }

    @Test("an every-second schedule for a minute", .timeLimit(.minutes(3)), arguments: Backend.allCases)
    func everySecond(backend: Backend) async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let url = backend == .sqlite ? scratch.databaseURL : try await PostgresTestServer.freshDatabaseURL()
        #expect(try await WorkerBinary.run(["migrate"], database: url).status == 0)
        let logs = (0..<2).map { scratch.directory.appendingPathComponent("worker-\($0).log").path }
        var workers: [Daemon] = []
        for log in logs { workers.append(try await Daemon(database: url, logPath: log)) }
        for log in logs { try await Daemon.waitForStart(logPath: log, count: 1) }

        // Ticks every second for a minute, from a whole second a little ahead.
        let start = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 3).rounded(.down))
        let end = start.addingTimeInterval(59)
        let created = try await WorkerBinary.run(
            ["schedule", "create", "pulse", "--cron", "* * * * * *", "--type", "diagnostics.three-steps",
             "--input", #""beat""#, "--overlap", "allowAll", "--start-at", start.formatted(.iso8601),
             "--end-at", end.formatted(.iso8601)], database: url)
        #expect(created.status == 0, "\(created.stderr)")

        try await Task.sleep(until: .now + .seconds(start.addingTimeInterval(25).timeIntervalSinceNow), clock: .continuous)
        await workers[0].kill()
        workers[0] = try await Daemon(database: url, logPath: logs[0])
        try await Daemon.waitForStart(logPath: logs[0], count: 2)
        try await Task.sleep(for: .seconds(max(0, end.timeIntervalSinceNow) + 3))
        for worker in workers { #expect(try await worker.terminate() == 0) }

        try await StoreLocation(url: url).withStore { store in
            let runs = try await store.listRuns(RunQuery(searchAttributes: ["scheduleID": .string("pulse")], limit: 1000))
            let expected = (0...59).map { "pulse@\(start.addingTimeInterval(Double($0)).formatted(.iso8601))" }
            #expect(runs.count == 60, "one run per tick")
            #expect(Set(runs.map(\.workflowID)) == Set(expected), "every tick, none missed")
            let record = try #require(try await store.schedule(id: "pulse"))
            #expect(record.firedCount == 60 && record.missedCount == 0 && record.skippedCount == 0)
            #expect(record.nextFireAt == nil, "past its end")
            // The runs complete (the workers had the whole minute).
            #expect(runs.filter { $0.status == .completed }.count >= 55, "\(runs.map(\.status.rawValue))")
        }
        if backend == .postgres { try await PostgresTestServer.drop(url) }
    }
}
