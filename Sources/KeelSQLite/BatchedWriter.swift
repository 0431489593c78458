import GRDB
import Synchronization
import WorkflowRuntime

/// Group commit for SQLite: concurrent writes that arrive while a transaction is being written
/// are committed together in the next one, each in its own savepoint (a failing write rolls back
/// alone). A caller resumes only after the transaction holding its write has committed.
final class BatchedWriter: Sendable {
    private struct Request: Sendable {
        var run: @Sendable (Database) -> Void
        var finish: @Sendable (Error?) -> Void
    }

    private struct State {
        var pending: [Request] = []
        var flushing = false
    }

    private let pool: DatabasePool
    private let state = Mutex(State())

    init(pool: DatabasePool) {
        self.pool = pool
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<T, Error>) in
            let outcome = Mutex<Result<T, Error>?>(nil)
            let request = Request(
                run: { db in
                    let result: Result<T, Error>
                    do {
                        try db.executeCached(sql: "SAVEPOINT keel_write")
                        do {
                            result = .success(try body(db))
                            try db.executeCached(sql: "RELEASE keel_write")
                        } catch {
                            try db.executeCached(sql: "ROLLBACK TO keel_write")
                            try db.executeCached(sql: "RELEASE keel_write")
                            throw error
                        }
                    } catch {
                        outcome.withLock { $0 = .failure(error) }
                        return
                    }
                    outcome.withLock { $0 = result }
                },
                finish: { commitError in
                    if let commitError {
                        continuation.resume(throwing: commitError)
                    } else {
                        continuation.resume(with: outcome.withLock { $0! })
                    }
                })
            let startFlush = state.withLock { state -> Bool in
                state.pending.append(request)
                if state.flushing { return false }
                state.flushing = true
                return true
            }
            if startFlush {
                pool.asyncWriteWithoutTransaction { db in self.flush(db) }
            }
        }
    }

    private func flush(_ db: Database) {
        while true {
            let batch = state.withLock { state -> [Request] in
                let batch = state.pending
                state.pending.removeAll()
                if batch.isEmpty { state.flushing = false }
                return batch
            }
            if batch.isEmpty { return }
            var commitError: Error?
            do {
                try db.inTransaction(.immediate) {
                    for request in batch { request.run(db) }
                    return .commit
                }
            } catch {
                commitError = error
            }
            for request in batch { request.finish(commitError) }
        }
    }
}
