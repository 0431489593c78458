import WorkflowRuntime
import WorkflowTesting

extension StoreBackend {
    /// Runs `body` with a time-skipping test environment on a fresh, migrated store of this
    /// backend, so engine tests run on SQLite and on PostgreSQL alike.
    func withEnvironment(registry: WorkflowRegistry, eagerActivities: Bool = true,
                         _ body: (TestWorkflowEnvironment) async throws -> Void) async throws {
        try await withStore { store in
            let env = TestWorkflowEnvironment(registry: registry, store: store, eagerActivities: eagerActivities)
            defer { env.shutdown() }
            try await body(env)
        }
    }
}
