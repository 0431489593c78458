import Foundation

/// The numbered SQL migrations shipped as resources (`Migrations/NNNN_name.sql`), in order.
enum SQLiteMigrations {
    struct Migration {
        var name: String
        var sql: String
    }

    static func all() throws -> [Migration] {
        guard let directory = Bundle.module.url(forResource: "Migrations", withExtension: nil) else {
            throw KeelError(.storage, "the SQLite migrations are missing from the WorkflowRuntime resource bundle")
        }
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "sql" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        return try files.map { Migration(name: $0.deletingPathExtension().lastPathComponent, sql: try String(contentsOf: $0, encoding: .utf8)) }
    }
}
