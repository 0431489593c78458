import Foundation
import Logging
import Synchronization
import Testing
import WorkflowRuntime

/// Returns its input at once: its first workflow task closes the run.
private struct Echo: Workflow {
    static let name = "test.echo"

    func run(context: WorkflowContext, input: String) async throws -> String { input }
}

/// A driver that fails the first `failures` transactions that would close a run, as if the
/// database had become unreachable as they committed: nothing of them stays.
private final class UnreachableAtClose: SQLDriver {
    let base: any SQLDriver
    private let remaining: Mutex<Int>

    init(base: any SQLDriver, failures: Int) {
        self.base = base
        remaining = Mutex(failures)
    }

    var failed: Bool { remaining.withLock { $0 == 0 } }
    var dialect: SQLDialect { base.dialect }
    var notifier: WorkNotifier { base.notifier }

    func runTransaction(
        _ body: @escaping @Sendable (any SQLConnection, inout StoreNotifications) async throws -> any Sendable
    ) async throws -> any Sendable {
        try await base.runTransaction { connection, notifications in
            let sent = SentStatements()
            let value = try await body(LoggedConnection(base: connection, sent: sent), &notifications)
            if sent.list.withLock({ $0.contains { $0.contains("closed_at = ?") } }), self.takeFailure() {
                throw KeelError(.databaseUnreachable, "the database went away as the run closed")
            }
            return value
        }
    }

    /// Whether a failure is left to inflict (and counts it).
    private func takeFailure() -> Bool {
        remaining.withLock { count in
            defer { count = max(0, count - 1) }
            return count > 0
        }
    }

    func runRead(_ body: @escaping @Sendable (any SQLConnection) async throws -> any Sendable) async throws
        -> any Sendable
    { try await base.runRead(body) }

    func migrate() async throws -> [String] { try await base.migrate() }
    func pendingMigrations() async throws -> [String] { try await base.pendingMigrations() }
}

@Suite("A commit that fails because the database is unreachable")
struct UnreachableCommitTests {
    @Test("gives its task back at once, uncounted: outages in a row do not block the run as a crash loop",
          arguments: StoreBackend.allCases)
    func taskGivenBack(backend: StoreBackend) async throws {
        try await backend.withStore { plain in
            let base = try #require(plain as? SQLWorkflowStore)
            // Three failed closes in a row against a claim limit of 2: counted, the third claim
            // would block the run; and a lease of a minute would hold each retry that long.
            let driver = UnreachableAtClose(base: base.driver, failures: 3)
            let store = SQLWorkflowStore(driver: driver)
            var registry = WorkflowRegistry()
            registry.register(Echo.self)
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let worker = Worker(
                store: store, registry: registry,
                configuration: WorkerConfiguration(
                    pollInterval: .milliseconds(20), workflowTaskLease: .seconds(60), workflowTaskClaimLimit: 2),
                logger: logger)
            let client = WorkflowClient(store: store, registry: registry)
            let result = try await worker.withRunning {
                let handle = try await client.start(Echo.self, id: "echo", input: "hello")
                return try await client.result(of: handle, as: Echo.self, timeout: .seconds(20))
            }
            #expect(result == "hello")
            #expect(driver.failed)
        }
    }
}
