import Foundation
import GRDB
import WorkflowRuntime

/// Where diagnostic activities record their side effects, so exactly-once effects can be checked
/// from outside (`sqlite3 keel.sqlite 'SELECT * FROM diagnostic_effects'`).
///
/// Table `diagnostic_effects(idempotency_key PRIMARY KEY, workflow_id, step, attempts)`: a key is
/// inserted once; a repeated attempt with the same key only increments `attempts`.
public protocol DiagnosticEffects: Sendable {
    /// Records one attempt of a step's effect. - Returns: how many attempts the key has seen.
    func record(idempotencyKey: String, workflowID: String, step: Int) async throws -> Int
}

/// ``DiagnosticEffects`` in an SQLite file — the workflow store's own file in the worker.
public final class SQLiteDiagnosticEffects: DiagnosticEffects {
    private let queue: DatabaseQueue

    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        queue = try DatabaseQueue(path: path, configuration: configuration)
        try queue.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS diagnostic_effects (
                    idempotency_key TEXT PRIMARY KEY,
                    workflow_id     TEXT NOT NULL,
                    step            INTEGER NOT NULL,
                    attempts        INTEGER NOT NULL
                )
                """)
        }
    }

    public func record(idempotencyKey: String, workflowID: String, step: Int) async throws -> Int {
        try await queue.write { db in
            try Int.fetchOne(db, sql: """
                INSERT INTO diagnostic_effects (idempotency_key, workflow_id, step, attempts) VALUES (?, ?, ?, 1)
                ON CONFLICT (idempotency_key) DO UPDATE SET attempts = attempts + 1
                RETURNING attempts
                """, arguments: [idempotencyKey, workflowID, step]) ?? 1
        }
    }
}
