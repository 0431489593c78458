import Foundation
import KeelSQLite
import Testing
import WorkflowRuntime

@Suite("worker schedule: create, list, show, pause, resume, trigger, backfill, delete; bad input refused", .serialized)
struct ScheduleCLITests {
    @Test("the schedule commands on one SQLite file")
    func commands() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = scratch.databaseURL
        #expect(try await WorkerBinary.run(["migrate"], database: db).status == 0)
        let created = try await WorkerBinary.run(
            ["schedule", "create", "enrich", "--cron", "0 2 * * *", "--tz", "Australia/Sydney", "--type",
             "diagnostics.sequence", "--input", #"{"steps":1}"#, "--overlap", "allowAll", "--catchup-window", "2h",
             "--jitter", "30s", "--note", "nightly enrichment"], database: db)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stdout.contains("created schedule enrich"))

        let show = try await WorkerBinary.run(["schedule", "show", "enrich"], database: db)
        #expect(show.status == 0)
        // Five next ticks, at 2 AM Sydney (+10:00 or +11:00) and in UTC.
        let ticks = show.stdout.split(separator: "\n").filter { $0.contains("T02:00:00+1") }
        #expect(ticks.count == 5, "\(show.stdout)")
        #expect(show.stdout.contains("nightly enrichment") && show.stdout.contains("allowAll"))

        let triggered = try await WorkerBinary.run(["schedule", "trigger", "enrich"], database: db)
        #expect(triggered.status == 0 && triggered.stdout.contains("started enrich@"), "\(triggered.stdout)")
        let backfill = try await WorkerBinary.run(
            ["schedule", "backfill", "enrich", "--from", "2026-11-01T00:00:00Z", "--to", "2026-11-03T23:59:59Z"],
            database: db)
        #expect(backfill.status == 0)
        #expect(backfill.stdout.split(separator: "\n").filter { $0.hasPrefix("started enrich@") }.count == 3,
                "\(backfill.stdout)")
        let listed = try await WorkerBinary.run(["list", "--schedule", "enrich", "--json"], database: db)
        let runs = try JSONDecoder.iso8601.decode([WorkflowRun].self, from: Data(listed.stdout.utf8))
        #expect(runs.count == 4)
        #expect(runs.contains { $0.workflowID == "enrich@2026-11-01T15:00:00Z" }, "2 AM AEDT on 2 November")

        #expect(try await WorkerBinary.run(["schedule", "pause", "enrich", "--note", "audit"], database: db).status == 0)
        let list = try await WorkerBinary.run(["schedule", "list"], database: db)
        #expect(list.stdout.contains("enrich") && list.stdout.contains("paused"))
        let json = try await WorkerBinary.run(["schedule", "list", "--json"], database: db)
        #expect(json.stdout.contains(#""firedCount" : 4"#), "\(json.stdout)")
        #expect(try await WorkerBinary.run(["schedule", "resume", "enrich"], database: db).status == 0)
        #expect(try await WorkerBinary.run(["schedule", "delete", "enrich"], database: db).status == 0)
        let gone = try await WorkerBinary.run(["schedule", "show", "enrich"], database: db)
        #expect(gone.status == 3 && gone.stderr.contains("no schedule with id 'enrich'"))
    }

    @Test("invalid specs, unknown zones and bad options exit 2 naming the problem, and create nothing",
          arguments: [
            (["--cron", "61 * * * *"], "minute"),
            (["--cron", "* * *"], "has 3 fields"),
            (["--cron", "@fortnightly"], "macro"),
            (["--cron", "@daily", "--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
            (["--cron", "@daily", "--overlap", "sometimes"], "overlap"),
            (["--cron", "@daily", "--catchup-window", "soon"], "--catchup-window 'soon'"),
            (["--cron", "@daily", "--jitter", "-5s"], "--jitter"),
            (["--cron", "@daily", "--start-at", "tomorrow"], "--start-at 'tomorrow'"),
          ])
    func refused(options: [String], message: String) async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = scratch.databaseURL
        #expect(try await WorkerBinary.run(["migrate"], database: db).status == 0)
        let output = try await WorkerBinary.run(
            ["schedule", "create", "bad", "--type", "diagnostics.sequence", "--input", #"{"steps":1}"#] + options,
            database: db)
        #expect(output.status == 2, "\(output.stderr)")
        #expect(output.stderr.contains(message), "\(output.stderr)")
        let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
        #expect(try await store.listSchedules().isEmpty)
        let unknownType = try await WorkerBinary.run(
            ["schedule", "create", "bad", "--cron", "@daily", "--type", "no.such"], database: db)
        #expect(unknownType.status == 2 && unknownType.stderr.contains("unknown workflow type"))
    }
}
