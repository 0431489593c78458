import ArgumentParser
import Foundation
import WorkflowRuntime

/// `worker schedule create|list|show|pause|resume|delete|trigger|backfill`.
struct ScheduleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule", abstract: "Cron schedules that start workflows, fired by the running workers.",
        subcommands: [
            Create.self, List.self, Show.self, Pause.self, Resume.self, Delete.self, Trigger.self, Backfill.self,
        ])

    /// `worker schedule create ID --cron SPEC --tz ZONE --type T [--input JSON] [--overlap P] ...`.
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a schedule.")

        @OptionGroup var database: DatabaseOptions
        @Argument(help: "Schedule id.") var id: String
        @Option(help: "Cron expression: 5 fields or @hourly, @daily, @weekly, @monthly, @yearly.") var cron: String
        @Option(help: "IANA time zone the expression is read in, e.g. Australia/Sydney.") var tz = "UTC"
        @Option(help: "Workflow type each tick starts.") var type: String
        @Option(help: "The runs' input as JSON, @PATH or -.") var input = "{}"
        @Option(help: "The runs' task queue.") var taskQueue = TaskQueue.default
        @Option(
            help: "When the previous run is still open: skip, bufferOne, allowAll, cancelPrevious, terminatePrevious.")
        var overlap = ScheduleOverlapPolicy.skip
        @Option(help: "Missed ticks at most this old still fire (e.g. 3600, 90s, 30m, 1h, 2d).")
        var catchupWindow = "1h"
        @Option(help: "Each run starts up to this much after its tick (e.g. 30s, 5m).") var jitter = "0"
        @Option(help: "A note for operators.") var note: String?
        @Option(help: "No tick before this ISO-8601 time.") var startAt: String?
        @Option(help: "No tick after this ISO-8601 time.") var endAt: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                let expression: CronExpression
                do { expression = try CronExpression(cron) } catch {
                    throw KeelError(.invalidArgument, "--cron: \(error)")
                }
                let definition = ScheduleDefinition(
                    id: id, cron: expression, timeZone: tz, workflowType: type,
                    input: try JSONArgument.payload(input, option: "--input"), taskQueue: taskQueue, overlap: overlap,
                    catchupWindow: try DurationArgument.parse(catchupWindow, option: "--catchup-window"),
                    jitter: try DurationArgument.parse(jitter, option: "--jitter"), note: note,
                    startAt: try startAt.map { try TimeArgument.parse($0, option: "--start-at") },
                    endAt: try endAt.map { try TimeArgument.parse($0, option: "--end-at") })
                try await database.withStore { store in
                    let client = WorkflowClient(store: store, registry: try KeelCLI.registry(for: store))
                    let record = try await client.createSchedule(definition)
                    if json { return try printJSON(ScheduleView(record)) }
                    printLine(
                        "created schedule \(id): \(cron) in \(tz), next tick \(Formatting.time(record.nextFireAt)) UTC")
                }
            }
        }
    }

    /// `worker schedule list [--json]`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List schedules.")

        @OptionGroup var database: DatabaseOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                try await database.withStore { store in
                    let schedules = try await WorkflowClient(store: store).schedules()
                    if json { return try printJSON(schedules.map(ScheduleView.init)) }
                    var table = TextTable(
                        "ID", "CRON", "ZONE", "TYPE", "OVERLAP", "STATE", "NEXT (UTC)", "FIRED", "SKIPPED", "MISSED")
                    for record in schedules {
                        let definition = record.definition
                        table.add(
                            definition.id, definition.cron.text, definition.timeZone, definition.workflowType,
                            definition.overlap.rawValue, record.paused ? "paused" : "active",
                            Formatting.time(record.nextFireAt), "\(record.firedCount)", "\(record.skippedCount)",
                            "\(record.missedCount)")
                    }
                    print(schedules.isEmpty ? "no schedules" : table.render())
                }
            }
        }
    }

    /// `worker schedule show ID [--json]`: the next five ticks in the schedule's zone and in UTC, and recent runs.
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a schedule: its definition, counts, next five ticks and recent runs.")

        @OptionGroup var database: DatabaseOptions
        @Argument(help: "Schedule id.") var id: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                try await database.withStore { store in
                    let client = WorkflowClient(store: store)
                    let record = try await client.schedule(id)
                    let zone = TimeZone(identifier: record.definition.timeZone) ?? .gmt
                    let next =
                        record.paused
                        ? []
                        : record.nextFireAt.map { first in
                            [first] + record.definition.cron.nextFires(4, after: first, in: zone)
                        } ?? []
                    let runs = try await client.list(
                        RunQuery(searchAttributes: ["scheduleID": .string(id)], limit: 10))
                    if json {
                        return try printJSON(
                            ScheduleDetails(schedule: ScheduleView(record), nextTicks: next, recentRuns: runs))
                    }
                    print(ScheduleRenderer.details(record, next: next, zone: zone, runs: runs))
                }
            }
        }
    }

    /// `worker schedule pause ID [--note T]`.
    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop firing a schedule.")

        @OptionGroup var database: DatabaseOptions
        @Argument(help: "Schedule id.") var id: String
        @Option(help: "Why (shown by list and show).") var note: String?

        func run() async throws {
            try await reportingErrors {
                try await database.withStore { store in
                    try await WorkflowClient(store: store).pauseSchedule(id, note: note)
                    printLine("paused schedule \(id)")
                }
            }
        }
    }

    /// `worker schedule resume ID`.
    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fire a paused schedule again, from its next tick (ticks while paused are not fired).")

        @OptionGroup var database: DatabaseOptions
        @Argument(help: "Schedule id.") var id: String

        func run() async throws {
            try await reportingErrors {
                try await database.withStore { store in
                    let record = try await WorkflowClient(store: store).resumeSchedule(id)
                    printLine("resumed schedule \(id), next tick \(Formatting.time(record.nextFireAt)) UTC")
                }
            }
        }
    }

    /// `worker schedule delete ID`.
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a schedule (the runs it started are kept).")

        @OptionGroup var database: DatabaseOptions
        @Argument(help: "Schedule id.") var id: String

        func run() async throws {
            try await reportingErrors {
                try await database.withStore { store in
                    try await WorkflowClient(store: store).deleteSchedule(id)
                    printLine("deleted schedule \(id)")
                }
            }
        }
    }

    /// `worker schedule trigger ID`.
    struct Trigger: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fire a tick now, honouring the schedule's overlap policy.")

        @OptionGroup var database: DatabaseOptions
        @Argument(help: "Schedule id.") var id: String

        func run() async throws {
            try await reportingErrors {
                try await database.withStore { store in
                    printLine(ScheduleRenderer.describe(try await WorkflowClient(store: store).triggerSchedule(id)))
                }
            }
        }
    }

    /// `worker schedule backfill ID --from T --to T [--overlap P]`.
    struct Backfill: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fire every tick between two times, as if the schedule had run then (each tick at most once).")

        @OptionGroup var database: DatabaseOptions
        @Argument(help: "Schedule id.") var id: String
        @Option(help: "First time (ISO-8601), included.") var from: String
        @Option(help: "Last time (ISO-8601), included.") var to: String
        @Option(help: "How a tick treats an open run of the schedule.") var overlap = ScheduleOverlapPolicy.allowAll

        func run() async throws {
            try await reportingErrors {
                let start = try TimeArgument.parse(from, option: "--from")
                let end = try TimeArgument.parse(to, option: "--to")
                try await database.withStore { store in
                    let outcomes = try await WorkflowClient(store: store).backfillSchedule(
                        id, from: start, to: end, overlap: overlap)
                    for outcome in outcomes { printLine(ScheduleRenderer.describe(outcome)) }
                    if outcomes.isEmpty { printLine("no tick between \(from) and \(to)") }
                }
            }
        }
    }
}

extension ScheduleOverlapPolicy: ExpressibleByArgument {}

/// A schedule as `--json` shows it.
struct ScheduleView: Encodable {
    var id, cron, timeZone, workflowType, taskQueue, overlap: String
    var input: Payload
    var catchupWindowSeconds, jitterSeconds: Double
    var note, pauseNote, lastWorkflowID: String?
    var paused: Bool
    var startAt, endAt, lastFireAt, nextFireAt, bufferedTick: Date?
    var firedCount, skippedCount, missedCount: Int
    var createdAt: Date

    init(_ record: ScheduleRecord) {
        let definition = record.definition
        id = definition.id; cron = definition.cron.text; timeZone = definition.timeZone
        workflowType = definition.workflowType; taskQueue = definition.taskQueue; overlap = definition.overlap.rawValue
        input = definition.input; catchupWindowSeconds = definition.catchupWindow.seconds
        jitterSeconds = definition.jitter.seconds; note = definition.note; pauseNote = record.pauseNote
        lastWorkflowID = record.lastWorkflowID; paused = record.paused; startAt = definition.startAt
        endAt = definition.endAt; lastFireAt = record.lastFireAt; nextFireAt = record.nextFireAt
        bufferedTick = record.bufferedTick; firedCount = record.firedCount; skippedCount = record.skippedCount
        missedCount = record.missedCount; createdAt = record.createdAt
    }
}

struct ScheduleDetails: Encodable {
    var schedule: ScheduleView
    var nextTicks: [Date]
    var recentRuns: [WorkflowRun]
}

enum ScheduleRenderer {
    static func details(_ record: ScheduleRecord, next: [Date], zone: TimeZone, runs: [WorkflowRun]) -> String {
        let definition = record.definition
        var fields: [(String, String)] = [
            ("Schedule", definition.id), ("Cron", "\(definition.cron.text) in \(definition.timeZone)"),
            ("Workflow", "\(definition.workflowType) on queue \(definition.taskQueue)"),
            ("Input", definition.input.description), ("Overlap", definition.overlap.rawValue),
            ("Catch-up", "\(Int(definition.catchupWindow.seconds)) s"),
            ("Jitter", "\(Int(definition.jitter.seconds)) s"),
            ("State", record.paused ? "paused" + (record.pauseNote.map { ": \($0)" } ?? "") : "active"),
            ("Counts", "fired \(record.firedCount), skipped \(record.skippedCount), missed \(record.missedCount)"),
            ("Last", Formatting.time(record.lastFireAt) + (record.lastWorkflowID.map { " (\($0))" } ?? "")),
        ]
        if let note = definition.note { fields.append(("Note", note)) }
        if let buffered = record.bufferedTick { fields.append(("Buffered", Formatting.time(buffered))) }
        var sections = [
            fields.map {
                "\($0.0.padding(toLength: 10, withPad: " ", startingAt: 0))\(NameRules.escapingControls($0.1))"
            }
            .joined(separator: "\n")
        ]
        var ticks = TextTable("NEXT TICK (\(definition.timeZone))", "UTC")
        for tick in next {
            ticks.add(tick.formatted(Date.ISO8601FormatStyle(timeZone: zone)), Formatting.time(tick))
        }
        sections.append(next.isEmpty ? "No tick ahead" : ticks.render())
        if !runs.isEmpty {
            var table = TextTable("RECENT RUN", "STATUS", "CREATED")
            for run in runs { table.add(run.workflowID, run.status.rawValue, Formatting.time(run.createdAt)) }
            sections.append(table.render())
        }
        return sections.joined(separator: "\n\n")
    }

    static func describe(_ outcome: ScheduleTickOutcome) -> String {
        switch outcome {
        case .started(let workflowID, let runID): "started \(workflowID) (run \(runID))"
        case .skipped(let tick): "skipped the tick of \(Formatting.time(tick)) (overlap policy, or its run exists)"
        case .buffered(let tick): "buffered the tick of \(Formatting.time(tick)) until the open run closes"
        }
    }
}

/// Durations on the command line: seconds (`90`) or a number with `s`, `m`, `h` or `d`.
enum DurationArgument {
    static func parse(_ text: String, option: String) throws -> Duration {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        var number = text
        var unit = 1.0
        if let last = text.last, let factor = units[last] {
            number = String(text.dropLast())
            unit = factor
        }
        guard let value = Double(number) else {
            throw KeelError(.invalidArgument, "\(option) '\(text)' is not a duration (e.g. 90, 90s, 30m, 1h, 2d)")
        }
        return try Duration.checked(seconds: value * unit, option)
    }
}

/// Times on the command line: ISO-8601 (`2027-01-15T08:00:00Z`).
enum TimeArgument {
    static func parse(_ text: String, option: String) throws -> Date {
        guard let date = try? Date(text, strategy: .iso8601) else {
            throw KeelError(
                .invalidArgument, "\(option) '\(text)' is not an ISO-8601 time such as 2027-01-15T08:00:00Z")
        }
        return date
    }
}
