import Activities
import KeelPostgres
import KeelSQLite
import WorkflowRuntime
import Workflows

/// The workflows and activities this executable runs.
enum WorkerRegistry {
    /// The registry for `database`; diagnostic effects are recorded in the same database.
    static func make(for database: WorkflowDatabase) throws -> WorkflowRegistry {
        var registry = WorkflowRegistry()
        registry.registerDiagnosticWorkflows()
        let effects: any DiagnosticEffects
        if let path = database.sqlitePath {
            effects = try SQLiteDiagnosticEffects(path: path)
        } else if let client = database.postgresClient {
            effects = PostgresDiagnosticEffects(client: client)
        } else {
            throw KeelError(.invalidArgument, "no diagnostic effects table for this database's backend")
        }
        registry.registerDiagnosticActivities(effects: effects)
        return registry
    }
}
