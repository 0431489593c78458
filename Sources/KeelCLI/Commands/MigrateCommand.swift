import ArgumentParser
import Foundation
import WorkflowRuntime

/// `worker migrate`: creates the database (an SQLite file in an existing directory) or upgrades its
/// schema. Of concurrent `migrate` processes, only the one that applied a migration reports it.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract:
            "Create the database or apply pending schema migrations (an SQLite file only in an existing directory).")

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        try await reportingErrors {
            try await database.location().withStore(createIfMissing: true) { store in
                let applied = try await store.migrate()
                print(applied.isEmpty ? "schema is up to date" : "applied \(applied.joined(separator: ", "))")
            }
        }
    }
}
