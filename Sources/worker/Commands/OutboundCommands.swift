import Activities
import ArgumentParser
import Foundation
import KeelCLI
import WorkflowRuntime

/// `worker outbox [--channel C] [--run ID] [--json]` and `worker outbox show KEY`.
struct OutboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox", abstract: "What the send activities recorded: one row per idempotency key.",
        subcommands: [List.self, Show.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the outbox, newest first.")

        @OptionGroup var database: DatabaseOptions
        @Option(help: "Only this channel: email, sms, whatsapp, linkedin.") var channel: OutboundChannel?
        @Option(help: "Only the sends of this run id.") var run: String?
        @Option(help: "At most this many rows (1 to 10000).") var limit = 100
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                guard (1...10_000).contains(limit) else {
                    throw KeelError(.invalidArgument, "--limit must be from 1 to 10000, got \(limit)")
                }
                try await database.withDatabase { database in
                    let entries = try await OutboundLedger(database: database).outbox(
                        channel: channel, runID: run, limit: limit)
                    if json { return try printJSON(entries) }
                    var table = TextTable("KEY", "CHANNEL", "TO", "MODE", "STATUS", "PROVIDER ID", "CREATED (UTC)")
                    for entry in entries {
                        table.add(
                            entry.idempotencyKey, entry.channel, entry.recipient ?? "-", entry.mode, entry.status,
                            entry.providerMessageID ?? "-", Formatting.time(entry.createdAt))
                    }
                    print(entries.isEmpty ? "the outbox is empty" : table.render())
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one outbox row: the message as rendered.")

        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The send's idempotency key.") var key: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                try await database.withDatabase { database in
                    guard let entry = try await OutboundLedger(database: database).outboxEntry(key) else {
                        throw KeelError(.workflowNotFound, "no outbox row with idempotency key '\(key)'")
                    }
                    if json { return try printJSON(entry) }
                    for (name, value) in [
                        ("key", entry.idempotencyKey), ("channel", entry.channel), ("from", entry.sender ?? "-"),
                        ("to", entry.recipient ?? "-"), ("mode", entry.mode), ("status", entry.status),
                        ("detail", entry.detail ?? "-"), ("provider id", entry.providerMessageID ?? "-"),
                        ("workflow", entry.workflowID), ("run", entry.runID), ("attempts", "\(entry.attempts)"),
                        ("created", Formatting.time(entry.createdAt) + " UTC"),
                        ("sent", entry.sentAt.map { Formatting.time($0) + " UTC" } ?? "-"),
                        ("message", entry.message),
                    ] {
                        printLine("\(name.padding(toLength: 12, withPad: " ", startingAt: 0))\(value)")
                    }
                }
            }
        }
    }
}

/// `worker suppress ADDRESS --reason R [--source S]`.
struct SuppressCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suppress",
        abstract: "Never send to an address (or a whole domain, written @example.com) again.")

    @OptionGroup var database: DatabaseOptions
    @Argument(help: "An e-mail address, a phone number, a profile URL, or @domain.") var address: String
    @Option(help: "Why (kept with the entry).") var reason: String
    @Option(help: "unsubscribe, bounce, complaint or manual.") var source = Suppression.Source.manual
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await reportingErrors {
            try await database.withDatabase { database in
                let entry = try await OutboundLedger(database: database).suppress(
                    address, reason: reason, source: source)
                if json { return try printJSON(entry) }
                printLine("suppressed \(entry.address) (\(entry.source.rawValue): \(entry.reason))")
            }
        }
    }
}

/// `worker unsuppress ADDRESS`.
struct UnsuppressCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unsuppress", abstract: "Take an address or @domain off the suppression list.")

    @OptionGroup var database: DatabaseOptions
    @Argument(help: "The address or @domain.") var address: String

    func run() async throws {
        try await reportingErrors {
            try await database.withDatabase { database in
                guard try await OutboundLedger(database: database).unsuppress(address) else {
                    throw KeelError(.workflowNotFound, "'\(address)' is not on the suppression list")
                }
                printLine("\(Recipient.normalized(address)) is no longer suppressed")
            }
        }
    }
}

/// `worker suppressions [--json]`.
struct SuppressionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suppressions", abstract: "List the suppression list.")

    @OptionGroup var database: DatabaseOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await reportingErrors {
            try await database.withDatabase { database in
                let entries = try await OutboundLedger(database: database).suppressions()
                if json { return try printJSON(entries) }
                var table = TextTable("ADDRESS", "SOURCE", "REASON", "SINCE (UTC)")
                for entry in entries {
                    table.add(entry.address, entry.source.rawValue, entry.reason, Formatting.time(entry.createdAt))
                }
                print(entries.isEmpty ? "the suppression list is empty" : table.render())
            }
        }
    }
}

/// `worker limits [--json]`: today's sends per channel and sender, against their limits.
struct LimitsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "limits",
        abstract: "Today's sends per channel and sender (each in its own zone), with the configured limits.",
        discussion: "Limits and zones come from the file KEEL_CONFIG names, as in `worker run`.")

    @OptionGroup var database: DatabaseOptions
    @Flag(help: "Print JSON.") var json = false

    struct Row: Encodable {
        var channel: String
        var sender: String
        var day: String
        var sent: Int
        var limit: Int?
    }

    func run() async throws {
        try await reportingErrors {
            let configuration = try WorkerRegistry.outboundConfiguration()
            try await database.withDatabase { database in
                let now = Date()
                // The earliest "today" of any zone is at most a day before UTC's.
                let since = SenderDay(of: now.addingTimeInterval(-86_400), in: .gmt)
                let rows = try await OutboundLedger(database: database).sendCounts(since: since).compactMap {
                    count -> Row? in
                    guard let channel = OutboundChannel(rawValue: count.channel) else { return nil }
                    let settings = configuration.channel(channel)
                    let today = SenderDay(of: now, in: settings.zone(for: count.sender))
                    guard count.day == today.description else { return nil }
                    return Row(
                        channel: count.channel, sender: count.sender, day: count.day, sent: count.sent,
                        limit: settings.dailyLimit(for: count.sender, on: today))
                }
                if json { return try printJSON(rows) }
                var table = TextTable("CHANNEL", "SENDER", "DAY", "SENT", "LIMIT")
                for row in rows {
                    table.add(row.channel, row.sender, row.day, "\(row.sent)", row.limit.map(String.init) ?? "none")
                }
                print(rows.isEmpty ? "no sends today" : table.render())
            }
        }
    }
}

/// `worker emergency-stop on --reason R | off | status`.
struct EmergencyStopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emergency-stop",
        abstract: "Hold every send (nothing leaves, nothing is dropped) until it is switched off.",
        subcommands: [On.self, Off.self, Status.self])

    struct On: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "From the next send on, every send waits.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Why (shown by status and in each held send).") var reason: String
        @Option(help: "Who switched it (default: $USER).") var by: String?

        func run() async throws {
            try await reportingErrors {
                guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else {
                    throw KeelError(.invalidArgument, "--reason must not be empty")
                }
                try await database.withDatabase { database in
                    try await OutboundLedger(database: database).setEmergencyStop(
                        true, reason: reason, by: by ?? ProcessInfo.processInfo.environment["USER"])
                    printLine("emergency stop on: every send waits (\(reason))")
                }
            }
        }
    }

    struct Off: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Release the held sends: each goes out once, at its next retry.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Who switched it (default: $USER).") var by: String?

        func run() async throws {
            try await reportingErrors {
                try await database.withDatabase { database in
                    try await OutboundLedger(database: database).setEmergencyStop(
                        false, reason: nil, by: by ?? ProcessInfo.processInfo.environment["USER"])
                    printLine("emergency stop off: held sends go out at their next retry")
                }
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show whether the emergency stop is on.")
        @OptionGroup var database: DatabaseOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                try await database.withDatabase { database in
                    let stop = try await OutboundLedger(database: database).emergencyStop()
                    if json { return try printJSON(stop) }
                    let since = stop.changedAt.map { " since \(Formatting.time($0)) UTC" } ?? ""
                    let by = stop.changedBy.map { " by \($0)" } ?? ""
                    printLine(
                        stop.active
                            ? "emergency stop ON\(since)\(by): \(stop.reason ?? "no reason given")"
                            : "emergency stop off\(since)\(by)")
                }
            }
        }
    }
}

/// `worker config check FILE`.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "The worker's configuration file (channels, providers, limits).",
        subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration file: errors name the bad key; exit 2 if it cannot be used.")
        @Argument(help: "The JSON file.") var file: String

        func run() async throws {
            try await reportingErrors {
                let configuration: OutboundConfiguration
                do { configuration = try .load(path: file) } catch let error as ConfigurationError {
                    throw KeelError(.invalidArgument, "\(file): \(error)")
                }
                for channel in OutboundChannel.allCases {
                    let settings = configuration.channel(channel)
                    let limit = settings.dailyLimit.map { "\($0) a day per sender" } ?? "no daily limit"
                    let target = settings.baseURL.map { " → \($0.absoluteString)" } ?? ""
                    let mode = settings.mode.rawValue
                    printLine("\(channel.rawValue): \(mode)\(target), \(limit), days in \(settings.timeZone)")
                }
                for problem in configuration.problems(in: ProcessInfo.processInfo.environment) {
                    printLine("warning: \(problem) (`worker run` refuses to start without it)")
                }
                printLine("\(file) is valid")
            }
        }
    }
}

extension OutboundChannel: ExpressibleByArgument {}
extension Suppression.Source: ExpressibleByArgument {}
