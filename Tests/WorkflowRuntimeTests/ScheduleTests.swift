import Foundation
import Testing
import WorkflowRuntime
import WorkflowTesting

/// Calls `Uppercase` once and completes: it closes when its first task runs.
struct ShoutOnce: Workflow {
    static let name = "test.shout-once"

    func run(context: WorkflowContext, input: Empty) async throws -> String {
        try await context.execute(Uppercase.self, "tick")
    }
}

/// 2027-01-15 08:00:00 UTC, the test environment's start: on the hour.
private let t0 = Date(timeIntervalSince1970: 1_800_000_000)

@Suite("Cron schedules fired by the workers: overlap policies, catch-up, pause, trigger, backfill, jitter")
struct ScheduleTests {
    static func registry() -> WorkflowRegistry {
        var registry = testRegistry()
        registry.register(ShoutOnce.self)
        return registry
    }

    /// An hourly schedule of `Collector(1)` runs, which stay open until they get an `item`.
    static func hourly(_ id: String, _ overlap: ScheduleOverlapPolicy) throws -> ScheduleDefinition {
        ScheduleDefinition(
            id: id, cron: try CronExpression("0 * * * *"), workflowType: Collector.name, input: Payload(json: "1"),
            overlap: overlap)
    }

    static func at(_ hours: Double) -> Date { t0.addingTimeInterval(hours * 3600) }

    static func runID(_ env: TestWorkflowEnvironment, _ id: String, tick: Date) async throws -> WorkflowRun? {
        try await env.store.findRun(workflowID: "\(id)@\(tick.formatted(.iso8601))")
    }

    @Test("each overlap policy, ticking while the previous run is open", arguments: StoreBackend.allCases)
    func overlapPolicies(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            for policy in ScheduleOverlapPolicy.allCases {
                try await env.client.createSchedule(try Self.hourly("s-\(policy)", policy))
            }
            for hour in 1...3 {
                env.clock.advance(to: Self.at(Double(hour)))
                try await env.runUntilIdle()
            }
            func statuses(_ policy: ScheduleOverlapPolicy) async throws -> [RunStatus?] {
                var statuses: [RunStatus?] = []
                for hour in 1...3 {
                    statuses.append(try await Self.runID(env, "s-\(policy)", tick: Self.at(Double(hour)))?.status)
                }
                return statuses
            }
            #expect(try await statuses(.skip) == [.running, nil, nil])
            #expect(try await env.client.schedule("s-skip").skippedCount == 2)
            #expect(try await statuses(.allowAll) == [.running, .running, .running])
            #expect(try await statuses(.cancelPrevious) == [.cancelled, .cancelled, .running])
            #expect(try await statuses(.terminatePrevious) == [.terminated, .terminated, .running])
            // bufferOne: hour 2 waits, hour 3 is skipped; closing the first run starts the buffered one.
            #expect(try await statuses(.bufferOne) == [.running, nil, nil])
            let buffering = try await env.client.schedule("s-bufferOne")
            #expect(buffering.bufferedTick == Self.at(2) && buffering.skippedCount == 1)
            try await env.client.signal(
                workflowID: "s-bufferOne@\(Self.at(1).formatted(.iso8601))", name: "item", value: "done")
            try await env.runUntilIdle()
            #expect(try await statuses(.bufferOne) == [.completed, .running, nil])
            #expect(try await env.client.schedule("s-bufferOne").bufferedTick == nil)

            // Runs carry the schedule and the tick as search attributes.
            let ofSchedule = try await env.client.list(RunQuery(searchAttributes: ["scheduleID": .string("s-allowAll")]))
            #expect(ofSchedule.count == 3)
            let tick2 = try await env.client.list(RunQuery(
                searchAttributes: ["scheduleID": .string("s-allowAll"), "scheduledTime": .date(Self.at(2))]))
            #expect(tick2.map(\.workflowID) == ["s-allowAll@\(Self.at(2).formatted(.iso8601))"])
            let record = try await env.client.schedule("s-allowAll")
            #expect(record.firedCount == 3 && record.lastFireAt == Self.at(3) && record.nextFireAt == Self.at(4))
        }
    }

    @Test("after a 3-hour outage: ticks within the catch-up window fire, older ones are counted missed",
          arguments: StoreBackend.allCases)
    func catchUp(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            for (id, window) in [("within", 4.0), ("beyond", 1.0)] {
                try await env.client.createSchedule(ScheduleDefinition(
                    id: id, cron: try CronExpression("*/15 * * * *"), workflowType: ShoutOnce.name, overlap: .allowAll,
                    catchupWindow: .seconds(window * 3600)))
            }
            env.clock.advance(to: Self.at(3))  // no worker ran meanwhile
            try await env.runUntilIdle()
            let within = try await env.client.schedule("within")
            #expect(within.firedCount == 12 && within.missedCount == 0)
            let beyond = try await env.client.schedule("beyond")
            #expect(beyond.firedCount == 5 && beyond.missedCount == 7, "2:00 to 3:00 fire, 0:15 to 1:45 are missed")
            #expect(beyond.nextFireAt == Self.at(3.25))
            #expect(try await Self.runID(env, "beyond", tick: Self.at(2)) != nil)
            #expect(try await Self.runID(env, "beyond", tick: Self.at(1.75)) == nil)
        }
    }

    @Test("pause and resume; trigger honours skip; backfill starts each tick once", arguments: StoreBackend.allCases)
    func pauseTriggerBackfill(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            try await env.client.createSchedule(try Self.hourly("report", .skip))
            let paused = try await env.client.pauseSchedule("report", note: "quarter close")
            #expect(paused.paused && paused.pauseNote == "quarter close")
            env.clock.advance(to: Self.at(2.5))
            try await env.runUntilIdle()
            #expect(try await env.client.schedule("report").firedCount == 0)
            let resumed = try await env.client.resumeSchedule("report")
            #expect(!resumed.paused && resumed.nextFireAt == Self.at(3), "the paused ticks are not fired")

            guard case .started(let triggered, _) = try await env.client.triggerSchedule("report") else {
                Issue.record("trigger with nothing open did not start a run")
                return
            }
            #expect(triggered == "report@\(Self.at(2.5).formatted(.iso8601))")
            #expect(try await env.client.triggerSchedule("report") == .skipped(tick: Self.at(2.5)),
                    "skip, with the triggered run open")

            let backfilled = try await env.client.backfillSchedule("report", from: Self.at(-3), to: Self.at(-1))
            #expect(backfilled.count == 3)
            #expect(backfilled.allSatisfy { if case .started = $0 { true } else { false } })
            let again = try await env.client.backfillSchedule("report", from: Self.at(-3), to: Self.at(-1))
            #expect(again == [Self.at(-3), Self.at(-2), Self.at(-1)].map { .skipped(tick: $0) }, "each tick runs once")
            await #expect(throws: KeelError.self) {
                try await env.client.backfillSchedule("report", from: Self.at(1), to: Self.at(0))
            }
            try await env.client.deleteSchedule("report")
            do {
                _ = try await env.client.schedule("report")
                Issue.record("the schedule outlived its deletion")
            } catch let error as KeelError {
                #expect(error.code == .scheduleNotFound)
            }
        }
    }

    @Test("a tick's run starts within its jitter after the tick, at a time fixed per tick", arguments: StoreBackend.allCases)
    func jitter(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            try await env.client.createSchedule(ScheduleDefinition(
                id: "jittered", cron: try CronExpression("0 * * * *"), workflowType: ShoutOnce.name,
                overlap: .allowAll, jitter: .seconds(600)))
            var delays: [Double] = []
            for hour in 1...6 {
                let tick = Self.at(Double(hour))
                env.clock.advance(to: tick)
                try await env.runUntilIdle()
                let run = try #require(try await Self.runID(env, "jittered", tick: tick))
                // Its only task runs (and closes it) once the jittered time has come.
                let closed = try await env.waitForClose(runID: run.runID)
                delays.append(try #require(closed.closedAt).timeIntervalSince(tick))
            }
            #expect(delays.allSatisfy { (0...600).contains($0) }, "\(delays)")
            #expect(Set(delays).count > 1, "each tick has its own delay: \(delays.map { "\($0)" })")
        }
    }

    @Test("bad definitions are refused, naming the problem, and create nothing", arguments: StoreBackend.allCases)
    func refused(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            let cron = try CronExpression("@daily")
            let cases: [(ScheduleDefinition, String)] = [
                (ScheduleDefinition(id: "a", cron: cron, timeZone: "Mars/Olympus", workflowType: ShoutOnce.name),
                 "unknown time zone 'Mars/Olympus'"),
                (ScheduleDefinition(id: "b@c", cron: cron, workflowType: ShoutOnce.name), "must not hold '@'"),
                (ScheduleDefinition(id: "d", cron: cron, workflowType: "no.such"), "unknown workflow type"),
                (ScheduleDefinition(id: "e", cron: cron, workflowType: ShoutOnce.name, jitter: .seconds(-1)), "jitter"),
                (ScheduleDefinition(id: "f", cron: cron, workflowType: ShoutOnce.name, endAt: t0.addingTimeInterval(-1)),
                 "no tick left"),
            ]
            for (definition, message) in cases {
                do {
                    try await env.client.createSchedule(definition)
                    Issue.record("'\(definition.id)' was created")
                } catch let error as KeelError {
                    #expect(error.message.contains(message), "\(error.message)")
                } catch {
                    #expect("\(error)".contains(message), "\(error)")
                }
            }
            #expect(try await env.client.schedules().isEmpty)
            try await env.client.createSchedule(ScheduleDefinition(id: "g", cron: cron, workflowType: ShoutOnce.name))
            await #expect(throws: KeelError.self) {
                try await env.client.createSchedule(ScheduleDefinition(id: "g", cron: cron, workflowType: ShoutOnce.name))
            }
        }
    }
}
