import Activities
import ArgumentParser
import Foundation
import KeelCLI
import WorkflowRuntime

/// `worker cadence register FILE | list | show ID [--version N]`.
struct CadenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cadence", abstract: "Outreach cadences as data: versioned documents, no rebuild.",
        subcommands: [Register.self, List.self, Show.self])

    struct Register: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a cadence document version (exit 2 naming the bad step; runs started later use it).")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The cadence's JSON document.") var file: String

        func run() async throws {
            try await reportingErrors {
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw KeelError(.invalidArgument, "cannot read \(file)")
                }
                let document: CadenceDocument
                do { document = try CadenceDocument.parse(data) } catch let error as CadenceError {
                    throw KeelError(.invalidArgument, "\(file): \(error)")
                }
                try await database.withDatabase { database in
                    let new = try await CadenceLibrary(database: database).register(document)
                    let name = "cadence \(document.id) version \(document.version)"
                    printLine(
                        new
                            ? "registered \(name) (\(document.steps.count) steps)"
                            : "\(name) is already registered, unchanged")
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the cadences and their versions.")
        @OptionGroup var database: DatabaseOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                try await database.withDatabase { database in
                    let documents = try await CadenceLibrary(database: database).documents()
                    if json { return try printJSON(documents) }
                    var table = TextTable("ID", "VERSION", "NAME", "STEPS", "CLOSES ON DAY")
                    for document in documents {
                        table.add(
                            document.id, "\(document.version)", document.name ?? "-", "\(document.steps.count)",
                            "\(document.closeOnDay)")
                    }
                    print(table.render())
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a cadence's steps (its highest version by default).")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "Cadence id.") var id: String
        @Option(help: "The version (default: the highest).") var version: Int?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                try await database.withDatabase { database in
                    let document = try await CadenceLibrary(database: database).document(id, version: version)
                    if json { return try printJSON(document) }
                    printLine("\(document.id) version \(document.version)\(document.name.map { ": \($0)" } ?? "")")
                    let exits = document.exits.map(\.rawValue).joined(separator: ", ")
                    printLine("exits on: \(exits); closes on day \(document.closeOnDay)")
                    var table = TextTable("DAY", "CHANNEL", "TEMPLATE", "SUBJECT", "CONDITIONS")
                    for step in document.steps {
                        table.add(
                            "\(step.day)", step.channel.rawValue, step.template, step.subject ?? "-",
                            (step.conditions ?? []).map(\.rawValue).joined(separator: ", "))
                    }
                    print(table.render())
                }
            }
        }
    }
}
