import Foundation
import KeelPostgres
import Logging
import PostgresNIO
import Synchronization
import WorkflowRuntime

/// ``DiagnosticEffects`` in the workflow store's PostgreSQL database, through its client. Every
/// query runs on a live connection (`withLiveConnection`), so a server restart fails the attempt
/// instead of hanging it.
public final class PostgresDiagnosticEffects: DiagnosticEffects {
    private let client: PostgresClient
    private let logger = Logger(label: "keel.diagnostics")
    private let tablesReady = Atomic<Bool>(false)

    public init(client: PostgresClient) {
        self.client = client
    }

    public func record(idempotencyKey: String, workflowID: String, step: Int) async throws -> Int {
        try await createTables()
        let logger = self.logger
        return try await client.withLiveConnection { connection in
            let rows = try await connection.query(
                """
                INSERT INTO diagnostic_effects (idempotency_key, workflow_id, step,
                    attempts) VALUES (\(idempotencyKey), \(workflowID), \(step), 1)
                ON CONFLICT (idempotency_key) DO UPDATE SET attempts = diagnostic_effects.attempts + 1
                RETURNING attempts
                """, logger: logger)
            for try await attempts in rows.decode(Int.self) { return attempts }
            return 1
        }
    }

    public func compensate(idempotencyKey: String, effectKey: String, workflowID: String, step: Int) async throws -> (
        attempts: Int, undone: Bool
    ) {
        try await createTables()
        let logger = self.logger
        return try await client.withLiveConnection { connection in
            let rows = try await connection.query(
                """
                INSERT INTO diagnostic_compensations (idempotency_key, effect_key, workflow_id, step, undone, attempts)
                VALUES (\(idempotencyKey), \(effectKey), \(workflowID), \(step),
                        EXISTS (SELECT 1 FROM diagnostic_effects WHERE idempotency_key = \(effectKey)), 1)
                ON CONFLICT (idempotency_key) DO UPDATE SET attempts = diagnostic_compensations.attempts + 1
                RETURNING attempts, undone
                """, logger: logger)
            for try await (attempts, undone) in rows.decode((Int, Bool).self) { return (attempts, undone) }
            return (1, false)
        }
    }

    private func createTables() async throws {
        guard !tablesReady.load(ordering: .relaxed) else { return }
        let logger = self.logger
        try await client.withLiveConnection { connection in
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS diagnostic_effects (
                    idempotency_key TEXT PRIMARY KEY,
                    workflow_id     TEXT NOT NULL,
                    step            INTEGER NOT NULL,
                    attempts        INTEGER NOT NULL
                )
                """, logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS diagnostic_compensations (
                    idempotency_key TEXT PRIMARY KEY,
                    effect_key      TEXT NOT NULL,
                    workflow_id     TEXT NOT NULL,
                    step            INTEGER NOT NULL,
                    undone          BOOLEAN NOT NULL,
                    attempts        INTEGER NOT NULL
                )
                """, logger: logger)
        }
        tablesReady.store(true, ordering: .relaxed)
    }
}
