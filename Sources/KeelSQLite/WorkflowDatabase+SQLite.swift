import WorkflowRuntime

/// SQLite's `synchronous` setting for a workflow database (see
/// ``WorkflowDatabase/sqlite(path:synchronous:busyTimeout:createIfMissing:)``).
public enum SQLiteSynchronous: String, Sendable {
    /// Each commit syncs the write-ahead log before it is acknowledged: nothing acknowledged is
    /// lost, even on power failure. The default.
    case full
    /// The database stays consistent, but the last commits may be lost on power failure (not on a
    /// process crash).
    case normal
}

extension WorkflowDatabase {
    /// Opens the SQLite workflow database in the file at `path` (WAL mode; shared safely by a
    /// daemon and CLI processes). Call ``migrate()`` before first use.
    /// - Parameters:
    ///   - busyTimeout: how long a write waits for another process's write lock.
    ///   - createIfMissing: whether a missing file is created. Directories are never created.
    /// - Throws: ``KeelError`` `.databaseUnreachable`, naming the path (and a missing directory).
    public static func sqlite(
        path: String, synchronous: SQLiteSynchronous = .full, busyTimeout: Duration = .seconds(30),
        createIfMissing: Bool = true
    ) throws -> WorkflowDatabase {
        WorkflowDatabase(
            store: try SQLWorkflowStore(
                sqlitePath: path, synchronous: synchronous, busyTimeout: busyTimeout,
                createIfMissing: createIfMissing))
    }
}

extension WorkflowDatabase {
    /// The file of an SQLite workflow database (`nil` for another backend): activities may keep
    /// their own tables in it.
    public var sqlitePath: String? { (store as? SQLWorkflowStore)?.sqliteDriver?.path }
}
