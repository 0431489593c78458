import Activities
import WorkflowRuntime
import Workflows

/// The workflows and activities this executable runs.
enum WorkerRegistry {
    /// The registry for `store`; diagnostic effects are recorded in the store's own database.
    static func make(for store: any WorkflowStore) throws -> WorkflowRegistry {
        var registry = WorkflowRegistry()
        registry.registerDiagnosticWorkflows()
        let effects: any DiagnosticEffects
        switch store {
        case let sqlite as SQLiteWorkflowStore: effects = try SQLiteDiagnosticEffects(path: sqlite.path)
        case let postgres as PostgresWorkflowStore: effects = PostgresDiagnosticEffects(client: postgres.client)
        default: throw KeelError(.invalidArgument, "no diagnostic effects table for a \(type(of: store))")
        }
        registry.registerDiagnosticActivities(effects: effects)
        return registry
    }
}
