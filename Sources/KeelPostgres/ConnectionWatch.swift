import PostgresNIO
import Synchronization
import WorkflowRuntime

extension PostgresClient {
    /// Leases a connection for `work`, like `withConnection`, but throws
    /// ``PostgresConnectionClosedError`` instead of hanging when the connection is closed — by a
    /// server restart, `pg_terminate_backend` or a network drop — before or while `work` uses it.
    ///
    /// Use it for all database work that must not stall a worker, e.g. in activities:
    ///
    /// ```swift
    /// try await client.withLiveConnection { connection in
    ///     try await connection.query("UPDATE accounts SET ...", logger: logger)
    /// }
    /// ```
    ///
    /// Why: PostgresNIO 1.33 never completes a query written to a connection whose channel has
    /// already closed (the query bypasses the protocol handler once the channel is torn down and
    /// is dropped unanswered). Its pool can lease such a connection in the instant between the
    /// server closing it and the pool noticing, and a connection can close between two queries of
    /// one transaction. `work` therefore runs in a task of its own; when the connection closes,
    /// the caller gets the error after a short grace period even if `work` never returns (such
    /// work is abandoned; it holds nothing but the dead connection).
    public func withLiveConnection<Value: Sendable>(
        _ work: @escaping @Sendable (PostgresConnection) async throws -> Value
    ) async throws -> Value {
        try await withConnection { connection in
            try await ConnectionWatch.shared.run(on: connection, work)
        }
    }
}

/// The connection that database work used was closed before the work finished.
public struct PostgresConnectionClosedError: Error, CustomStringConvertible {
    public var description: String {
        "the connection to PostgreSQL closed (server restart, terminated backend or network drop)"
    }
}

/// Fails the work in progress on a connection when that connection closes.
///
/// One close callback per connection, however much work runs on it; a connection is tracked from
/// its first use until it closes (and kept alive until then, so its identity is not reused).
final class ConnectionWatch: Sendable {
    static let shared = ConnectionWatch()

    /// How long work may take to fail by itself after its connection closed: a query that was
    /// answered just before the close should still report its real outcome.
    private static let grace: TimeAmount = .milliseconds(250)

    private struct Watched {
        let connection: PostgresConnection
        var failures: [Int: @Sendable (any Error) -> Void] = [:]
    }

    private struct State {
        var watched: [ObjectIdentifier: Watched] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())

    /// Runs `work` on `connection`; throws ``PostgresConnectionClosedError`` once the connection
    /// closes and `work` has not finished within the grace period.
    func run<Value: Sendable>(
        on connection: PostgresConnection, _ work: @escaping @Sendable (PostgresConnection) async throws -> Value
    ) async throws -> Value {
        let outcome = Outcome<Value>()
        guard let id = watch(connection, failing: { outcome.finish(.failure($0)) }) else {
            throw PostgresConnectionClosedError()
        }
        defer { unwatch(connection, id: id) }
        // Not a child task: a child that never returns would hold its parent forever.
        let task = Task {
            do {
                outcome.finish(.success(try await work(connection)))
            } catch {
                outcome.finish(.failure(error))
            }
        }
        return try await withTaskCancellationHandler {
            try await outcome.value
        } onCancel: {
            task.cancel()
        }
    }

    /// Registers a failure handler for work on `connection`. - Returns: its id, or `nil` if the
    /// connection is already closed.
    private func watch(_ connection: PostgresConnection, failing fail: @escaping @Sendable (any Error) -> Void) -> Int?
    {
        guard !connection.isClosed else { return nil }
        let key = ObjectIdentifier(connection)
        let (id, isNew) = state.withLock { state in
            defer { state.nextID += 1 }
            let isNew = state.watched[key] == nil
            state.watched[key, default: Watched(connection: connection)].failures[state.nextID] = fail
            return (state.nextID, isNew)
        }
        if isNew {
            // Runs at once if the connection closed meanwhile.
            let eventLoop = connection.eventLoop
            connection.closeFuture.whenComplete { _ in self.closed(key, eventLoop: eventLoop) }
        }
        return id
    }

    private func unwatch(_ connection: PostgresConnection, id: Int) {
        state.withLock { _ = $0.watched[ObjectIdentifier(connection)]?.failures.removeValue(forKey: id) }
    }

    private func closed(_ key: ObjectIdentifier, eventLoop: any EventLoop) {
        guard let watched = state.withLock({ $0.watched.removeValue(forKey: key) }), !watched.failures.isEmpty else {
            return
        }
        eventLoop.scheduleTask(in: Self.grace) {
            for fail in watched.failures.values { fail(PostgresConnectionClosedError()) }
        }
    }
}

/// The result of one piece of work, delivered once: by the work itself or by its connection closing.
private final class Outcome<Value: Sendable>: Sendable {
    private enum State {
        case pending(CheckedContinuation<Value, any Error>?)
        case done(Result<Value, any Error>)
    }

    private let state = Mutex(State.pending(nil))

    var value: Value {
        get async throws {
            try await withCheckedThrowingContinuation { continuation in
                let result = state.withLock { state -> Result<Value, any Error>? in
                    switch state {
                    case .pending:
                        state = .pending(continuation)
                        return nil
                    case .done(let result):
                        return result
                    }
                }
                if let result { continuation.resume(with: result) }
            }
        }
    }

    /// Records the result; only the first one counts.
    func finish(_ result: Result<Value, any Error>) {
        let waiting = state.withLock { state -> CheckedContinuation<Value, any Error>?? in
            guard case .pending(let continuation) = state else { return nil }
            state = .done(result)
            return .some(continuation)
        }
        if case .some(.some(let continuation)) = waiting { continuation.resume(with: result) }
    }
}
