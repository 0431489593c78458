import Foundation
import KeelCLI
import KeelSQLite
import KeelTestSupport
import Testing
import WorkflowRuntime

@Suite("Migrations: concurrent callers apply each migration once")
struct MigrationConcurrencyTests {
    static let all = ["0001_initial", "0002_approvals_compensation", "0003_signal_request_fingerprint", "0004_workflow_task_claims",
                              "0005_task_queues", "0006_activity_cancellation", "0007_continue_as_new", "0008_child_workflows", "0009_stage_search_attributes", "0010_schedules", "0011_schedule_runs", "0012_outbound", "0013_cadences", "0014_inbox_version", "0015_timer_owner"]

    /// `migrate()` on six stores of one database at once: exactly one call returns the
    /// migrations, the others return nothing, and nothing is pending afterwards.
    private func expectOneApplies(_ stores: [any WorkflowStore]) async throws {
        let results = try await withThrowingTaskGroup(of: [String].self) { group in
            for store in stores { group.addTask { try await store.migrate() } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter { $0 == Self.all }.count == 1, "\(results)")
        #expect(results.filter(\.isEmpty).count == stores.count - 1, "\(results)")
        for store in stores { #expect(try await store.pendingMigrations().isEmpty) }
        #expect(try await stores[0].migrate().isEmpty)
    }

    @Test("SQLite: six stores (each its own connections) on a new file")
    func sqlite() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("keel-migrate-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let stores = try (0..<6).map { _ in try SQLWorkflowStore(sqlitePath: path) }
        try await expectOneApplies(stores)
    }

    @Test("SQLite: a missing file is created only when asked, never in a missing directory")
    func sqliteCreation() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keel-create-\(UUID().uuidString)")
        let path = directory.appendingPathComponent("keel.sqlite").path
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect { try SQLWorkflowStore(sqlitePath: path) } throws: { error in
            (error as? KeelError).map { $0.code == .databaseUnreachable && $0.message.contains("does not exist") } ?? false
        }
        #expect(!FileManager.default.fileExists(atPath: directory.path))

        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        #expect { try SQLWorkflowStore(sqlitePath: path, createIfMissing: false) } throws: { error in
            (error as? KeelError).map { $0.code == .databaseUnreachable && $0.message.contains(path) } ?? false
        }
        #expect(!FileManager.default.fileExists(atPath: path))

        let store = try SQLWorkflowStore(sqlitePath: path)
        #expect(try await store.migrate() == Self.all)
        let reopened = try SQLWorkflowStore(sqlitePath: path, createIfMissing: false)
        #expect(try await reopened.pendingMigrations().isEmpty)
        #expect(try await reopened.migrate().isEmpty)
    }

    @Test("PostgreSQL: six stores (each its own pool) on a new database")
    func postgres() async throws {
        try await PostgresTestServer.withFreshDatabase { url in
            let location = try StoreLocation(url: url)
            // Nested withStore calls: six stores, each with its own pool, open at once.
            func open(_ count: Int, _ stores: [any WorkflowStore]) async throws {
                guard count > 0 else { return try await expectOneApplies(stores) }
                try await location.withStore { try await open(count - 1, stores + [$0]) }
            }
            try await open(6, [])
        }
    }
}
