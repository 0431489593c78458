import Foundation
import GRDB
import KeelSQLite
import KeelTestSupport
import Testing
import WorkflowRuntime

@Suite("Concurrent `worker migrate` processes", .serialized)
struct ConcurrentMigrateTests {
    /// Every migration's name, in order (PostgreSQL's are the same).
    private static var migrationNames: [String] { SQLiteDriver.migrations.map(\.name) }

    /// Six `worker migrate` processes at once on `database`.
    private func migrateConcurrently(_ database: String) async throws -> [WorkerBinary.Output] {
        try await withThrowingTaskGroup(of: WorkerBinary.Output.self) { group in
            for _ in 0..<6 { group.addTask { try await WorkerBinary.run(["migrate"], database: database) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }

    /// Exactly one process applied the migrations; the others found the schema up to date.
    private func expectOneApplied(_ outputs: [WorkerBinary.Output]) throws {
        for output in outputs { #expect(output.status == 0, "\(output.stderr)") }
        let applied = outputs.filter { $0.stdout.contains("applied") }
        #expect(applied.count == 1, "\(outputs.map(\.stdout))")
        #expect(applied.first?.stdout == "applied \(Self.migrationNames.joined(separator: ", "))\n")
        #expect(outputs.filter { $0.stdout == "schema is up to date\n" }.count == 5, "\(outputs.map(\.stdout))")
    }

    /// The schema works: a run starts and is listed, and a further migrate has nothing to do.
    private func expectSchemaWorks(_ database: String) async throws {
        let started = try await WorkerBinary.run(["start", "diagnostics.wait-signal", "--id", "after-migrate"], database: database)
        #expect(started.status == 0, "\(started.stderr)")
        let listed = try await WorkerBinary.run(["list"], database: database)
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(listed.stdout.contains("after-migrate"))
        #expect(try await WorkerBinary.run(["migrate"], database: database).stdout == "schema is up to date\n")
    }

    @Test("on a fresh SQLite file: exactly one of six reports what it applied, all exit 0", arguments: 0..<3)
    func sqlite(round: Int) async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try expectOneApplied(try await migrateConcurrently(scratch.databaseURL))
        try await expectSchemaWorks(scratch.databaseURL)
    }

    @Test("on a fresh PostgreSQL database: exactly one of six reports what it applied, all exit 0")
    func postgres() async throws {
        try await PostgresTestServer.withFreshDatabase { url in
            try expectOneApplied(try await migrateConcurrently(url))
            try await expectSchemaWorks(url)
        }
    }

    @Test("a file migrated by GRDB's DatabaseMigrator (as by earlier versions) is upgraded, and that migrator sees it current")
    func grdbBookkeeping() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let names = Self.migrationNames
        func migrator(_ names: ArraySlice<String>) -> DatabaseMigrator {
            var migrator = DatabaseMigrator()
            for migration in SQLiteDriver.migrations where names.contains(migration.name) {
                migrator.registerMigration(migration.name) { db in try db.execute(sql: migration.sql) }
            }
            return migrator
        }
        let queue = try DatabaseQueue(path: scratch.databasePath)
        try migrator(names.prefix(1)).migrate(queue)
        try queue.close()

        let upgraded = try await WorkerBinary.run(["migrate"], database: scratch.databaseURL)
        #expect(upgraded.status == 0, "\(upgraded.stderr)")
        #expect(upgraded.stdout == "applied \(names.dropFirst().joined(separator: ", "))\n")
        let reopened = try DatabaseQueue(path: scratch.databasePath)
        let full = migrator(names[...])
        let current = try await reopened.read { try full.hasCompletedMigrations($0) }
        #expect(current)
        try reopened.close()
        try await expectSchemaWorks(scratch.databaseURL)
    }

    @Test("a worker binary copied alone to an empty directory migrates a new database and runs commands on it")
    func binaryCopiedAlone() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let copy = scratch.directory.appendingPathComponent("bin/worker")
        try FileManager.default.createDirectory(at: copy.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: WorkerBinary.url, to: copy)
        let migrated = try await WorkerBinary.run(["migrate", "--database", scratch.databaseURL], executable: copy)
        #expect(migrated.status == 0, "\(migrated.stderr)")
        #expect(migrated.stdout == "applied \(Self.migrationNames.joined(separator: ", "))\n")
        let started = try await WorkerBinary.run(["start", "diagnostics.wait-signal", "--id", "copied", "--database", scratch.databaseURL],
                                                 executable: copy)
        #expect(started.status == 0, "\(started.stderr)")
    }
}
