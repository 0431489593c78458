import Synchronization

/// A connection that runs nothing: it records the one ``SQLConnection/executeTogether(_:)`` of a
/// commit that needs nothing read first, so the driver can send those writes by themselves
/// (``SQLDriver/runStatements(_:notifications:)``). Anything else — a read, a second write —
/// throws ``NotASingleWrite``, and the commit runs in a transaction as usual.
final class SingleWriteRecorder: SQLConnection {
    /// The commit needs more than one write, or a read.
    struct NotASingleWrite: Error {}

    private let recorded = Mutex<[SQLStatement]?>(nil)

    /// The statements of the recorded write.
    var statements: [SQLStatement]? { recorded.withLock { $0 } }

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] { throw NotASingleWrite() }
    func execute(_ sql: String, _ binds: [SQLValue]) async throws { throw NotASingleWrite() }
    func changes(_ sql: String, _ binds: [SQLValue]) async throws -> Int { throw NotASingleWrite() }

    /// Records `statements`; - Returns: counts as if every counted statement changed a row.
    func executeTogether(_ statements: [SQLStatement]) async throws -> [Int] {
        try recorded.withLock { recorded in
            guard recorded == nil else { throw NotASingleWrite() }
            recorded = statements
        }
        return statements.map { $0.countsChanges ? 1 : 0 }
    }
}

extension SQLWorkflowStore {
    /// Runs `body` as one write: composed first against a ``SingleWriteRecorder`` and, when it
    /// came to a single ``SQLConnection/executeTogether(_:)`` with nothing read first, sent by
    /// itself (``SQLDriver/runStatements(_:notifications:)``: on PostgreSQL one statement, one
    /// round trip, when nothing else waits); otherwise run in a transaction as usual.
    ///
    /// For bodies that only compose writes: `body` may run twice, and its value must not depend
    /// on the counts of statements that are not required (the recorder cannot know them).
    func writeComposed<T: Sendable>(
        _ body: @escaping @Sendable (any SQLConnection, inout StoreNotifications) async throws -> T
    ) async throws -> T {
        let recorder = SingleWriteRecorder()
        var notifications = StoreNotifications()
        if let value = try? await body(recorder, &notifications), let statements = recorder.statements {
            _ = try await driver.runStatements(statements, notifications: notifications)
            return value
        }
        return try await driver.write(body)
    }
}
