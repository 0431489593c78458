import Foundation
import GRDB
import WorkflowRuntime

/// Where diagnostic activities record their side effects, so exactly-once effects can be checked
/// from outside (`sqlite3 keel.sqlite 'SELECT * FROM diagnostic_effects'`).
///
/// Table `diagnostic_effects(idempotency_key PRIMARY KEY, workflow_id, step, attempts)`: a key is
/// inserted once; a repeated attempt with the same key only increments `attempts`.
/// Table `diagnostic_compensations(idempotency_key PRIMARY KEY, effect_key, workflow_id, step, undone,
/// attempts)`: the compensations, the same way; `undone` says whether the effect existed to be undone.
public protocol DiagnosticEffects: Sendable {
    /// Records one attempt of a step's effect. - Returns: how many attempts the key has seen.
    func record(idempotencyKey: String, workflowID: String, step: Int) async throws -> Int
    /// Records one attempt of undoing the effect recorded under `effectKey` (there may be none).
    /// - Returns: how many attempts the compensation's key has seen, and whether the effect existed.
    func compensate(idempotencyKey: String, effectKey: String, workflowID: String, step: Int) async throws -> (
        attempts: Int, undone: Bool
    )
}

/// ``DiagnosticEffects`` in an SQLite file — the workflow store's own file in the worker.
public final class SQLiteDiagnosticEffects: DiagnosticEffects {
    private let queue: DatabaseQueue

    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        queue = try DatabaseQueue(path: path, configuration: configuration)
        try queue.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE IF NOT EXISTS diagnostic_effects (
                        idempotency_key TEXT PRIMARY KEY,
                        workflow_id     TEXT NOT NULL,
                        step            INTEGER NOT NULL,
                        attempts        INTEGER NOT NULL
                    )
                    """)
            try db.execute(
                sql: """
                    CREATE TABLE IF NOT EXISTS diagnostic_compensations (
                        idempotency_key TEXT PRIMARY KEY,
                        effect_key      TEXT NOT NULL,
                        workflow_id     TEXT NOT NULL,
                        step            INTEGER NOT NULL,
                        undone          INTEGER NOT NULL,
                        attempts        INTEGER NOT NULL
                    )
                    """)
        }
    }

    public func record(idempotencyKey: String, workflowID: String, step: Int) async throws -> Int {
        try await queue.write { db in
            try Int.fetchOne(
                db,
                sql: """
                    INSERT INTO diagnostic_effects (idempotency_key, workflow_id, step, attempts) VALUES (?, ?, ?, 1)
                    ON CONFLICT (idempotency_key) DO UPDATE SET attempts = attempts + 1
                    RETURNING attempts
                    """, arguments: [idempotencyKey, workflowID, step]) ?? 1
        }
    }

    public func compensate(idempotencyKey: String, effectKey: String, workflowID: String, step: Int) async throws -> (
        attempts: Int, undone: Bool
    ) {
        try await queue.write { db in
            let row = try Row.fetchOne(
                db,
                sql: """
                    INSERT INTO diagnostic_compensations (idempotency_key, effect_key, workflow_id, step, undone,
                        attempts)
                    VALUES (?, ?, ?, ?, EXISTS (SELECT 1 FROM diagnostic_effects WHERE idempotency_key = ?), 1)
                    ON CONFLICT (idempotency_key) DO UPDATE SET attempts = attempts + 1
                    RETURNING attempts, undone
                    """, arguments: [idempotencyKey, effectKey, workflowID, step, effectKey])
            return (row?[0] ?? 1, row?[1] ?? false)
        }
    }
}
