import Foundation
import Logging
import PostgresNIO
import WorkflowRuntime

/// A PostgreSQL connection running the core's statements: `?` placeholders become `$1`, `$2`, ...,
/// values are bound in PostgreSQL's binary format, and result cells are read by their type. Each
/// statement runs as a named prepared statement (``PreparedStatements``), parsed once per connection.
package struct PostgresSQLConnection: SQLConnection {
    let connection: PostgresConnection
    let statements: PreparedStatements
    let logger: Logger

    /// - Parameter statements: the names of the statements run on this process's connections.
    package init(connection: PostgresConnection, statements: PreparedStatements, logger: Logger) {
        self.connection = connection
        self.statements = statements
        self.logger = logger
    }

    package func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        let bindings = Self.bindings(binds)
        guard let statement = statements.statement(for: sql, types: binds.map(\.postgresType)) else {
            let query = PostgresQuery(unsafeSQL: Self.numberingPlaceholders(sql), binds: bindings)
            return try await connection.query(query, logger: logger).collect().map(Self.row(of:))
        }
        return try await CoreStatement.$current.withValue(statement) {
            var rows: [SQLRow] = []
            for try await row in try await connection.execute(CoreStatement(bindings: bindings), logger: logger) {
                rows.append(try Self.row(of: row))
            }
            return rows
        }
    }

    private static func bindings(_ binds: [SQLValue]) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: binds.count)
        for value in binds {
            switch value {
            case .null: bindings.appendNull()
            case .int(let int): bindings.append(int)
            case .double(let double): bindings.append(double)
            case .text(let text): bindings.append(text)
            case .blob(let data): bindings.append(ByteBuffer(bytes: data))
            case .bool(let bool): bindings.append(bool)
            }
        }
        return bindings
    }

    private static func row(of row: PostgresRow) throws -> SQLRow {
        SQLRow(try row.map(Self.value(of:)))
    }

    package func execute(_ sql: String, _ binds: [SQLValue]) async throws {
        _ = try await query(sql, binds)
    }

    /// Runs the statements as one: `WITH s0 AS (…), s1 AS (…) SELECT …`, the primary query
    /// counting the rows each counted statement returned. PostgreSQL runs every data-modifying
    /// query of a `WITH` to completion, all on one snapshot, in an order it chooses — hence the
    /// contract that none reads or writes a row another writes. (A row changed twice in one
    /// statement keeps only one of the changes, without an error.) Statements are joined while
    /// their values stay within ``maximumJoinedBinds``; a task with thousands of events takes
    /// several statements.
    ///
    /// A required statement (``SQLStatement/isRequired``) that changed no row throws
    /// ``CommitRequirementUnmet`` once its statement has run. So does a unique violation in a
    /// batch with a requirement: all of it ran on one snapshot, so its inserts may collide with
    /// rows that the transaction which moved the required row on had written (a run's next
    /// events, when another worker's commit took the run's history past this worker's).
    @discardableResult
    package func executeTogether(_ statements: [SQLStatement]) async throws -> [Int] {
        var changes: [Int] = []
        changes.reserveCapacity(statements.count)
        var index = statements.startIndex
        while index < statements.endIndex {
            var end = index + 1
            var bindCount = statements[index].binds.count
            while end < statements.endIndex, bindCount + statements[end].binds.count <= Self.maximumJoinedBinds {
                bindCount += statements[end].binds.count
                end += 1
            }
            let group = statements[index..<end]
            let counts: [Int]
            do {
                counts = try await executeJoined(group, bindCount: bindCount)
            } catch let error as PSQLError
                where error.serverInfo?[.sqlState] == Self.uniqueViolation && statements.contains(where: \.isRequired)
            {
                throw CommitRequirementUnmet()
            }
            if zip(group, counts).contains(where: { $0.isRequired && $1 == 0 }) { throw CommitRequirementUnmet() }
            changes += counts
            index = end
        }
        return changes
    }

    /// Runs the statements as one statement of its own, outside any transaction block, which
    /// PostgreSQL commits as it ends: a write in one round trip instead of four (`BEGIN`, the
    /// statement, `NOTIFY`, `COMMIT`). The `NOTIFY` of `payloads` is part of the statement
    /// (sent when it commits), and so is every requirement: the statement fails — nothing of it
    /// committed — when a required statement changed no row (its count goes through the
    /// function `keel_required` of migration 0015, which raises SQLSTATE `KL001`; this throws
    /// ``CommitRequirementUnmet``), where a transaction would check the counts and roll back.
    /// - Returns: `nil` when the statements' values exceed one statement's (``maximumJoinedBinds``):
    ///   they need a transaction.
    package func executeAsOneTransaction(_ statements: [SQLStatement], notifying payloads: [String]) async throws
        -> [Int]?
    {
        let bindCount = statements.reduce(0) { $0 + $1.binds.count }
        guard !statements.isEmpty, bindCount + 2 <= Self.maximumJoinedBinds else { return nil }
        var sql = "WITH "
        var binds: [SQLValue] = []
        binds.reserveCapacity(bindCount + 2)
        var columns: [String] = []
        for (position, statement) in statements.enumerated() {
            sql += position == 0 ? "s0 AS (" : "), s\(position) AS ("
            sql += statement.sql
            binds += statement.binds
            if statement.isRequired {
                columns.append("(SELECT keel_required(count(*)) FROM s\(position))")
            } else if statement.countsChanges {
                columns.append("(SELECT count(*) FROM s\(position))")
            }
        }
        let counted = columns.count
        if !payloads.isEmpty {
            sql += "), notified AS (SELECT pg_notify(?, p) FROM unnest(?::text[]) AS p"
            binds += [.text(PostgresDriver.channel), .text(Self.textArray(payloads))]
            columns.append("(SELECT count(*) FROM notified)")
        }
        sql += ") SELECT " + (columns.isEmpty ? "1" : columns.joined(separator: ", "))
        let row: SQLRow?
        do {
            row = try await query(sql, binds).first
        } catch let error as PSQLError
            where [Self.requirementUnmet, Self.uniqueViolation].contains(error.serverInfo?[.sqlState])
            && statements.contains(where: \.isRequired)
        {
            throw CommitRequirementUnmet()
        }
        var values = (row?.values ?? []).prefix(counted).makeIterator()
        return try statements.map { statement in
            guard statement.countsChanges else { return 0 }
            guard case .int(let count)? = values.next() else {
                throw KeelError(.storage, "PostgreSQL did not count the rows of a joined statement")
            }
            return Int(count)
        }
    }

    /// A PostgreSQL array literal of `texts` (each quoted, `"` and `\` escaped).
    private static func textArray(_ texts: [String]) -> String {
        let elements = texts.map { text in
            "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        return "{" + elements.joined(separator: ",") + "}"
    }

    /// PostgreSQL's SQLSTATE for a duplicate key.
    private static let uniqueViolation = "23505"
    /// The SQLSTATE `keel_required` raises: an unmet requirement of ``executeAsOneTransaction(_:notifying:)``.
    private static let requirementUnmet = "KL001"

    /// Runs `group` as one statement. - Returns: each statement's count of changed rows (0 when not counted).
    private func executeJoined(_ group: ArraySlice<SQLStatement>, bindCount: Int) async throws -> [Int] {
        if group.count == 1, let statement = group.first {
            guard statement.countsChanges else {
                try await execute(statement.sql, statement.binds)
                return [0]
            }
            return [try await self.changes(statement.sql, statement.binds)]
        }
        var sql = "WITH "
        var binds: [SQLValue] = []
        binds.reserveCapacity(bindCount)
        var counts: [String] = []
        for (position, statement) in group.enumerated() {
            sql += position == 0 ? "s0 AS (" : "), s\(position) AS ("
            sql += statement.sql
            binds += statement.binds
            if statement.countsChanges { counts.append("(SELECT count(*) FROM s\(position))") }
        }
        sql += ") SELECT " + (counts.isEmpty ? "1" : counts.joined(separator: ", "))
        let row = try await query(sql, binds).first
        var counted = (row?.values ?? []).makeIterator()
        return try group.map { statement in
            guard statement.countsChanges else { return 0 }
            guard case .int(let count)? = counted.next() else {
                throw KeelError(.storage, "PostgreSQL did not count the rows of a joined statement")
            }
            return Int(count)
        }
    }

    /// Most values bound to one joined statement (PostgreSQL takes at most 65,535).
    package static let maximumJoinedBinds = 10_000

    /// The rows the statement returns (it ends with `RETURNING 1`, ``SQLDialect/countingChanges``).
    package func changes(_ sql: String, _ binds: [SQLValue]) async throws -> Int {
        try await query(sql, binds).count
    }

    /// `sql` with its `?` placeholders numbered (the core's statements hold no `?` in literals).
    static func numberingPlaceholders(_ sql: String) -> String {
        // Over UTF-8 bytes, not Characters: this runs for every statement.
        var numbered: [UInt8] = []
        numbered.reserveCapacity(sql.utf8.count + 16)
        var next = 1
        for byte in sql.utf8 {
            if byte == UInt8(ascii: "?") {
                numbered.append(UInt8(ascii: "$"))
                numbered.append(contentsOf: String(next).utf8)
                next += 1
            } else {
                numbered.append(byte)
            }
        }
        return String(decoding: numbered, as: UTF8.self)
    }

    /// A result cell as a value, by its column type.
    private static func value(of cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8: return .int(try cell.decode(Int64.self))
        case .float4, .float8, .numeric: return .double(try cell.decode(Double.self))
        case .bool: return .bool(try cell.decode(Bool.self))
        case .bytea: return .blob(try cell.decode(Data.self))
        case .text, .varchar, .name, .bpchar: return .text(try cell.decode(String.self))
        default:
            throw KeelError(
                .storage,
                "PostgreSQL column '\(cell.columnName)' has type \(cell.dataType), which the store does not read")
        }
    }
}

extension SQLValue {
    /// The type PostgreSQL is told a bound value has (``PostgresSQLConnection/bindings(_:)`` encodes it so).
    fileprivate var postgresType: PostgresDataType {
        switch self {
        case .null: .null
        case .int: .int8
        case .double: .float8
        case .text: .text
        case .blob: .bytea
        case .bool: .bool
        }
    }
}

extension SQLWorkflowStore {
    /// The PostgreSQL driver of a store on PostgreSQL (`nil` for another backend).
    package var postgresDriver: PostgresDriver? { driver as? PostgresDriver }
}
