import Logging
import PostgresNIO
import Synchronization
import WorkflowRuntime

/// Group commit for PostgreSQL: writes of any runs that arrive while every lane is busy wait
/// together and are committed in one transaction, in arrival order, so the server syncs its log
/// and takes the notification lock once for all of them.
///
/// A lane is one connection committing one batch at a time. While fewer than
/// ``maximumLanes`` lanes are busy a write starts a lane at once, so an idle store answers a
/// single write with no added wait; under load the lanes are all busy and the queue turns into
/// batches of up to ``maximumBatch`` writes. A write of statements that need nothing read first
/// (``write(_:notifications:)``), alone in its batch, is one statement that commits by itself.
///
/// A batch holds what each of its writes would hold alone: a caller resumes only after the
/// transaction with its write has committed. A write that throws takes no other write down with
/// it: the batch rolls back, that write runs again alone (and fails, or not, with nothing else at
/// stake) and the others are committed again without it. A deadlock between lanes (two batches
/// locking two runs in opposite order) is resolved the same way, once PostgreSQL detects it.
/// Each write's statements therefore may run more than once before they commit; the store core's
/// bodies only read and write the database, so a rolled-back run of one leaves nothing behind.
/// (SQLite's ``BatchedWriter`` wraps each write in a savepoint instead; here that would add two
/// round trips to every write to save a rerun only when one fails.)
final class GroupCommit: Sendable {
    typealias Body = @Sendable (any SQLConnection, inout StoreNotifications) async throws -> any Sendable
    typealias Outcome = (value: any Sendable, notifications: StoreNotifications)

    private struct Request: Sendable {
        let work: Work
        let continuation: CheckedContinuation<Outcome, any Error>
    }

    /// What a write does: a body run in the batch's transaction, or a list of statements that
    /// need nothing read first, which alone in a batch are one statement and one round trip
    /// (``PostgresSQLConnection/executeAsOneTransaction(_:notifying:)``).
    private enum Work: Sendable {
        case body(Body)
        case statements([SQLStatement], StoreNotifications)

        /// The write as a body, for a batch's transaction.
        var body: Body {
            switch self {
            case .body(let body): body
            case .statements(let statements, let notifications):
                { connection, collected in
                    collected.formUnion(notifications)
                    return try await connection.executeTogether(statements)
                }
            }
        }
    }

    private struct State {
        var pending: [Request] = []
        var next = 0  // index of the first request not yet taken (the queue is compacted when drained)
        var lanes = 0
    }

    /// What one transaction of a batch came to.
    private enum Attempt: Sendable {
        case committed([Outcome])
        /// The write at this index threw; the transaction rolled back.
        case writeFailed(index: Int, error: any Error)
        /// The transaction failed as a whole (no connection, or its commit failed).
        case transactionFailed(any Error)
    }

    /// Most batches committing at once (each on its own connection).
    let maximumLanes: Int
    /// Most writes in one transaction: more would hold the locks of the first ones longer.
    let maximumBatch: Int
    private let client: PostgresClient
    private let statements: PreparedStatements
    /// The driver's mark on its `NOTIFY` payloads (``PostgresDriver/origin``).
    private let origin: String
    private let logger: Logger
    private let state = Mutex(State())

    /// - Parameters:
    ///   - client: the pool whose connections the lanes take.
    ///   - statements: the names of the core's statements on every connection.
    ///   - origin: the driver's mark on its `NOTIFY` payloads.
    init(
        client: PostgresClient, statements: PreparedStatements, origin: String, maximumLanes: Int, maximumBatch: Int,
        logger: Logger
    ) {
        self.client = client
        self.statements = statements
        self.origin = origin
        self.maximumLanes = max(1, maximumLanes)
        self.maximumBatch = max(1, maximumBatch)
        self.logger = logger
    }

    /// Runs `body` in the next transaction a lane commits; returns once that has committed.
    func write(_ body: @escaping Body) async throws -> Outcome {
        try await enqueue(.body(body))
    }

    /// Runs `statements` (``SQLConnection/executeTogether(_:)``) in the next transaction a lane
    /// commits, or as one statement when nothing else waits; returns their counts once committed.
    func write(_ statements: [SQLStatement], notifications: StoreNotifications) async throws -> [Int] {
        // The value is the one executeTogether returned.
        try await enqueue(.statements(statements, notifications)).value as! [Int]
    }

    private func enqueue(_ work: Work) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            let startsLane = state.withLock { state -> Bool in
                state.pending.append(Request(work: work, continuation: continuation))
                guard state.lanes < maximumLanes else { return false }
                state.lanes += 1
                return true
            }
            if startsLane { Task { await self.runLane() } }
        }
    }

    private func runLane() async {
        while let batch = takeBatch() {
            await commit(batch)
        }
    }

    /// The next batch, or `nil` (and the lane ends) when none is waiting.
    private func takeBatch() -> [Request]? {
        state.withLock { state in
            guard state.next < state.pending.count else {
                state.pending.removeAll(keepingCapacity: true)
                state.next = 0
                state.lanes -= 1
                return nil
            }
            let end = min(state.pending.count, state.next + maximumBatch)
            let batch = Array(state.pending[state.next..<end])
            state.next = end
            if state.next > 1024 {
                state.pending.removeFirst(state.next)
                state.next = 0
            }
            return batch
        }
    }

    /// Commits `batch`, taking out and running alone any write that throws, until every caller
    /// has its answer.
    private func commit(_ batch: [Request]) async {
        var remaining = batch
        while !remaining.isEmpty {
            switch await attempt(remaining) {
            case .committed(let outcomes):
                for (request, outcome) in zip(remaining, outcomes) { request.continuation.resume(returning: outcome) }
                return
            case .transactionFailed(let error):
                for request in remaining { request.continuation.resume(throwing: error) }
                return
            case .writeFailed(let index, let error):
                if remaining.count == 1 {
                    remaining[0].continuation.resume(throwing: error)
                    return
                }
                let failing = remaining.remove(at: index)
                await commit([failing])
            }
        }
    }

    /// Sends `COMMIT` and fails if the server rolled back instead (it answers `ROLLBACK` to a
    /// `COMMIT` of a transaction that a failed statement aborted), so no write is acknowledged
    /// that was not committed.
    private static func commit(on connection: PostgresConnection, logger: Logger) async throws {
        let answer: EventLoopFuture<PostgresQueryResult> = connection.query("COMMIT", logger: logger)
        let tag = try await answer.get().metadata.command
        guard tag == "COMMIT" else {
            throw KeelError(.storage, "PostgreSQL answered COMMIT with '\(tag)': the transaction was not committed")
        }
    }

    /// One transaction: `BEGIN`, every write, one `NOTIFY` for all, `COMMIT`.
    ///
    /// `BEGIN` and `NOTIFY` are sent without waiting for their answers: PostgresNIO sends each
    /// statement of a connection once the one before it has been answered, so the next follows at
    /// once from the connection's event loop instead of after a trip through this task. Their
    /// outcomes are checked all the same — a failed `BEGIN` fails the transaction, a failed
    /// `NOTIFY` aborts it and `COMMIT` is answered with `ROLLBACK`.
    private func attempt(_ batch: [Request]) async -> Attempt {
        if batch.count == 1, case .statements(let statements, let notifications) = batch[0].work,
            let alone = await attemptAlone(statements, notifications)
        {
            return alone
        }
        let logger = self.logger
        let bodies = batch.map(\.work.body)
        let (statements, origin) = (self.statements, self.origin)
        do {
            return try await client.withLiveConnection { connection -> Attempt in
                let begin: EventLoopFuture<PostgresQueryResult> = connection.query("BEGIN", logger: logger)
                let sqlConnection = PostgresSQLConnection(
                    connection: connection, statements: statements, logger: logger)
                var outcomes: [Outcome] = []
                outcomes.reserveCapacity(bodies.count)
                var combined = StoreNotifications()
                for (index, body) in bodies.enumerated() {
                    var notifications = StoreNotifications()
                    do {
                        outcomes.append((try await body(sqlConnection, &notifications), notifications))
                    } catch {
                        // Without a transaction the write's statements failed for that reason.
                        _ = try await begin.get()
                        // A write that failed and then lost its connection on ROLLBACK still failed first.
                        _ = try? await connection.query("ROLLBACK", logger: logger)
                        return .writeFailed(index: index, error: error)
                    }
                    combined.formUnion(notifications)
                }
                let notified = Self.notify(combined, origin: origin, on: connection, logger: logger)
                try await Self.commit(on: connection, logger: logger)
                _ = try await begin.get()
                _ = try await notified?.get()
                return .committed(outcomes)
            }
        } catch {
            return .transactionFailed(error)
        }
    }

    /// A lone write of statements, as one statement outside a transaction block, its `NOTIFY`
    /// included. - Returns: `nil` when its values are too many for one statement (it then needs
    /// a transaction).
    private func attemptAlone(_ statements: [SQLStatement], _ notifications: StoreNotifications) async -> Attempt? {
        let (logger, prepared, origin) = (self.logger, self.statements, self.origin)
        do {
            let counts = try await client.withLiveConnection { connection -> [Int]? in
                try await PostgresSQLConnection(connection: connection, statements: prepared, logger: logger)
                    .executeAsOneTransaction(
                        statements, notifying: PostgresDriver.payloads(of: notifications, origin: origin))
            }
            return counts.map { .committed([($0, notifications)]) }
        } catch let error as CommitRequirementUnmet {
            return .writeFailed(index: 0, error: error)
        } catch {
            return .transactionFailed(error)
        }
    }

    /// One `NOTIFY` per distinct payload of `notifications` (``PostgresDriver/payloads(of:origin:)``), in
    /// one statement, sent but not awaited; other processes' listeners wake their waiters when the
    /// transaction commits. - Returns: its answer to come, or `nil` when there is nothing to notify.
    private static func notify(
        _ notifications: StoreNotifications, origin: String, on connection: PostgresConnection, logger: Logger
    ) -> EventLoopFuture<PostgresQueryResult>? {
        let payloads = PostgresDriver.payloads(of: notifications, origin: origin)
        guard !payloads.isEmpty else { return nil }
        return connection.query(
            "SELECT pg_notify(\(PostgresDriver.channel), p) FROM unnest(\(payloads)::text[]) AS p", logger: logger)
    }
}
