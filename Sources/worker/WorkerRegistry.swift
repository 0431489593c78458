import Activities
import Foundation
import KeelPostgres
import KeelSQLite
import WorkflowRuntime
import Workflows

/// The workflows and activities this executable runs.
enum WorkerRegistry {
    /// The outbound configuration of the file `KEEL_CONFIG` names, or every channel in shadow mode.
    static func outboundConfiguration() throws -> OutboundConfiguration {
        guard let path = ProcessInfo.processInfo.environment["KEEL_CONFIG"], !path.isEmpty else { return .shadow }
        do { return try .load(path: path) } catch let error as ConfigurationError {
            throw KeelError(.invalidArgument, "KEEL_CONFIG \(path): \(error)")
        }
    }

    /// The registry for `database`; diagnostic effects and the outbox are in the same database,
    /// the channels configured by the file `KEEL_CONFIG` names (every channel shadow without one).
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
        do {
            let gateway = try OutboundGateway(database: database, configuration: try outboundConfiguration())
            registry.registerOutboundActivities(gateway: gateway)
            try registry.registerBusinessWorkflows(database: database, gateway: gateway)
        } catch let error as ConfigurationError {
            throw KeelError(.invalidArgument, "KEEL_CONFIG: \(error)")
        }
        return registry
    }
}
