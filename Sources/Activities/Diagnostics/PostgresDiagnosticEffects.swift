import Foundation
import Logging
import PostgresNIO
import Synchronization
import WorkflowRuntime

/// ``DiagnosticEffects`` in the workflow store's PostgreSQL database, through its client.
public final class PostgresDiagnosticEffects: DiagnosticEffects {
    private let client: PostgresClient
    private let logger = Logger(label: "keel.diagnostics")
    private let tableReady = Atomic<Bool>(false)

    public init(client: PostgresClient) {
        self.client = client
    }

    public func record(idempotencyKey: String, workflowID: String, step: Int) async throws -> Int {
        let logger = self.logger
        if !tableReady.load(ordering: .relaxed) {
            try await client.withLiveConnection { connection in
                _ = try await connection.query("""
                    CREATE TABLE IF NOT EXISTS diagnostic_effects (
                        idempotency_key TEXT PRIMARY KEY,
                        workflow_id     TEXT NOT NULL,
                        step            INTEGER NOT NULL,
                        attempts        INTEGER NOT NULL
                    )
                    """, logger: logger)
            }
            tableReady.store(true, ordering: .relaxed)
        }
        return try await client.withLiveConnection { connection in
            let rows = try await connection.query("""
                INSERT INTO diagnostic_effects (idempotency_key, workflow_id, step, attempts) VALUES (\(idempotencyKey), \(workflowID), \(step), 1)
                ON CONFLICT (idempotency_key) DO UPDATE SET attempts = diagnostic_effects.attempts + 1
                RETURNING attempts
                """, logger: logger)
            for try await attempts in rows.decode(Int.self) { return attempts }
            return 1
        }
    }
}
