import Activities
import WorkflowRuntime
import Workflows

/// The workflows and activities this executable runs.
enum WorkerRegistry {
    static func make(for location: StoreLocation) throws -> WorkflowRegistry {
        var registry = WorkflowRegistry()
        registry.registerDiagnosticWorkflows()
        switch location {
        case .sqlite(let path, _):
            registry.registerDiagnosticActivities(effects: try SQLiteDiagnosticEffects(path: path))
        }
        return registry
    }
}
