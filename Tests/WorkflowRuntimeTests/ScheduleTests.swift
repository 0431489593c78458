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

/// Returns at once: a tick's run that closes in its first task.
struct TickNoop: Workflow {
    static let name = "test.tick-noop"

    func run(context: WorkflowContext, input: Empty) async throws -> Empty { Empty() }
}

/// 2027-01-15 08:00:00 UTC, the test environment's start: on the hour.
private let t0 = Date(timeIntervalSince1970: 1_800_000_000)

@Suite("Cron schedules fired by the workers: overlap policies, catch-up, pause, trigger, backfill, jitter")
struct ScheduleTests {
    static func registry() -> WorkflowRegistry {
        var registry = testRegistry()
        registry.register(ShoutOnce.self)
        registry.register(TickNoop.self)
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

    /// The four business schedules run by the engine on the manual clock through 2027: each run
    /// is created at its tick exactly, across both Sydney daylight-saving changes. (PostgreSQL runs
    /// the two daily ones, 730 runs; the hourly ones' 4,300 runs take SQLite seconds and PostgreSQL
    /// minutes, through the same store core.)
    @Test("the four business schedules fire at exactly the right instants over a whole year",
          .timeLimit(.minutes(5)), arguments: StoreBackend.allCases)
    func businessSchedulesOverAYear(backend: StoreBackend) async throws {
        let start = try Date("2026-12-31T12:59:00Z", strategy: .iso8601)  // 23:59 on 31 December in Sydney
        let end = try Date("2027-12-31T13:00:00Z", strategy: .iso8601)
        try await backend.withStore { store in
            let env = TestWorkflowEnvironment(registry: Self.registry(), store: store, startTime: start)
            defer { env.shutdown() }
            var specs = [("enrichment", "0 2 * * *", "Australia/Sydney"), ("stall-check", "0 10 * * *", "UTC")]
            if backend == .sqlite {
                specs += [("outreach", "0 8-18 * * mon-fri", "Australia/Sydney"), ("recovery", "0 */6 * * *", "Australia/Sydney")]
            }
            for (id, cron, zone) in specs {
                try await env.client.createSchedule(ScheduleDefinition(
                    id: id, cron: try CronExpression(cron), timeZone: zone, workflowType: TickNoop.name,
                    endAt: end.addingTimeInterval(-1)))
            }
            while let next = try await env.store.nextWakeUp(), next < end {
                env.clock.advance(to: next)
                try await env.runUntilIdle()
            }
            func ticks(_ id: String) async throws -> [Date] {
                var runs: [WorkflowRun] = []
                var after: (Date, String)?
                repeat {
                    let page = try await env.client.list(RunQuery(
                        searchAttributes: ["scheduleID": .string(id)], limit: 1000, after: after))
                    runs += page
                    after = page.last.map { ($0.createdAt, $0.runID) }
                    if page.count < 1000 { break }
                } while true
                #expect(runs.allSatisfy { $0.status == .completed && $0.workflowID == "\(id)@\($0.createdAt.formatted(.iso8601))" },
                        "\(id): each run started at its tick")
                return runs.map(\.createdAt).sorted()
            }
            var sydneyCalendar = Calendar(identifier: .gregorian)
            sydneyCalendar.timeZone = TimeZone(identifier: "Australia/Sydney")!
            let enrichment = try await ticks("enrichment")
            #expect(enrichment.count == 365)
            // 4 April 2027: 2:00 happens twice — once, at the first (AEDT, 15:00Z). 3 October: 2:00
            // does not exist — once, at 3:00 AEDT (16:00Z).
            #expect(enrichment.contains(try Date("2027-04-03T15:00:00Z", strategy: .iso8601)))
            #expect(!enrichment.contains(try Date("2027-04-03T16:00:00Z", strategy: .iso8601)))
            #expect(enrichment.filter { sydneyCalendar.component(.hour, from: $0) != 2 }
                    == [try Date("2027-10-02T16:00:00Z", strategy: .iso8601)])
            if backend == .sqlite {
                let outreach = try await ticks("outreach")
                #expect(outreach.count == 261 * 11)
                #expect(outreach.allSatisfy {
                    (8...18).contains(sydneyCalendar.component(.hour, from: $0))
                        && (2...6).contains(sydneyCalendar.component(.weekday, from: $0))
                })
                #expect(try await ticks("recovery").count == 365 * 4)
            }
            let stall = try await ticks("stall-check")
            #expect(stall.count == 365 && stall.allSatisfy { Int($0.timeIntervalSince1970) % 86_400 == 36_000 })
            for (id, _, _) in specs {
                let record = try await env.client.schedule(id)
                #expect(record.missedCount == 0 && record.skippedCount == 0 && record.nextFireAt == nil, "\(id)")
            }
        }
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
