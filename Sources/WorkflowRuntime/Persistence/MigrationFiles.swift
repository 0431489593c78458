import Foundation

/// Numbered SQL migrations shipped as resources (`NNNN_name.sql`), one folder per backend, with
/// the same numbers on every backend. Never edit a migration once it has landed; add the next one.
enum MigrationFiles {
    struct Migration {
        var name: String
        var sql: String
    }

    static let sqlite = "SQLiteMigrations"
    static let postgres = "PostgresMigrations"

    /// The migrations in `directory`, in order.
    static func load(_ directory: String) throws -> [Migration] {
        guard let url = Bundle.module.url(forResource: directory, withExtension: nil) else {
            throw KeelError(.storage, "the \(directory) folder is missing from the WorkflowRuntime resource bundle")
        }
        let files = try FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "sql" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        return try files.map { Migration(name: $0.deletingPathExtension().lastPathComponent, sql: try String(contentsOf: $0, encoding: .utf8)) }
    }
}
