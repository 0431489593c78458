import Foundation
import KeelCLI
import KeelPostgres
import KeelTestSupport
import Logging
import PostgresNIO
import Testing
import WorkflowRuntime

/// The PostgreSQL driver runs the store core's statements as named prepared statements, one name
/// per statement text and bound types, prepared once per connection. These tests run statements
/// through ``PostgresSQLConnection`` on one connection and read what the server holds for it in
/// `pg_prepared_statements`; statements run together (``SQLConnection/executeTogether(_:)``) are
/// one prepared statement of data-modifying `WITH` queries.
@Suite("PostgreSQL: the core's statements are prepared once per connection")
struct PostgresPreparedStatementTests {
    private let logger = Logger(label: "keel.test.prepared")

    /// Runs `body` on one new connection to a fresh database with a table `items (id BIGINT, n INTEGER, note TEXT)`
    /// (and Keel's schema, with `keelSchema`).
    private func withConnection(
        capacity: Int = 1000, keelSchema: Bool = false,
        _ body: (PostgresSQLConnection, PostgresConnection) async throws -> Void
    ) async throws {
        try await PostgresTestServer.withFreshDatabase { url in
            if keelSchema {
                _ = try await StoreLocation(url: url).withStore(reachableWithin: .seconds(30)) { try await $0.migrate() }
            }
            let components = try #require(URLComponents(string: url))
            let configuration = PostgresConnection.Configuration(
                host: try #require(components.host), port: components.port ?? 5432,
                username: try #require(components.user), password: components.password,
                database: String(components.path.dropFirst()), tls: .disable)
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
            do {
                try await connection.query("CREATE TABLE items (id BIGINT PRIMARY KEY, n INTEGER, note TEXT)", logger: logger)
                let sql = PostgresSQLConnection(
                    connection: connection, statements: PreparedStatements(capacity: capacity), logger: logger)
                try await body(sql, connection)
            } catch {
                try? await connection.close()
                throw error
            }
            try await connection.close()
        }
    }

    /// The statements the server holds for `connection`, by name.
    private func prepared(on connection: PostgresConnection) async throws -> [String: String] {
        var statements: [String: String] = [:]
        for try await (name, statement) in try await connection.query(
            "SELECT name, statement FROM pg_prepared_statements", logger: logger
        ).decode((String, String).self) {
            statements[name] = statement
        }
        return statements
    }

    @Test("a statement run many times is prepared once, under one name, with numbered placeholders")
    func preparedOnce() async throws {
        try await withConnection { sql, connection in
            for id in 1...20 {
                try await sql.execute("INSERT INTO items (id, n, note) VALUES (?, ?, ?)", id, id * 2, "item \(id)")
            }
            let rows = try await sql.query("SELECT id, n, note FROM items WHERE id > ? ORDER BY id", [.int(18)])
            #expect(rows.map { $0.values } == [[.int(19), .int(38), .text("item 19")], [.int(20), .int(40), .text("item 20")]])
            let statements = try await prepared(on: connection)
            #expect(statements.count == 2, "\(statements)")
            #expect(statements.values.contains("INSERT INTO items (id, n, note) VALUES ($1, $2, $3)"))
        }
    }

    @Test("the same text bound with a NULL and with a value is two statements, and both run")
    func nullsAndValues() async throws {
        try await withConnection { sql, connection in
            // A NULL leaves the parameter's type to the server (INTEGER here); a value is sent as a
            // 64-bit integer. Sharing one prepared statement would send 8 bytes for a 4-byte parameter.
            let insert = "INSERT INTO items (id, n, note) VALUES (?, ?, ?)"
            try await sql.execute(insert, 1, Int?.none, String?.none)
            try await sql.execute(insert, 2, 7, "seven")
            try await sql.execute(insert, 3, Int?.none, String?.none)
            try await sql.execute(insert, 4, 2_000_000_000, "large")
            let rows = try await sql.query("SELECT id, n, note FROM items ORDER BY id", [])
            #expect(
                rows.map { $0.values } == [
                    [.int(1), .null, .null], [.int(2), .int(7), .text("seven")], [.int(3), .null, .null],
                    [.int(4), .int(2_000_000_000), .text("large")],
                ])
            #expect(try await prepared(on: connection).count == 3)
        }
    }

    @Test("a statement first prepared in a transaction that rolled back runs afterwards")
    func preparedInRolledBackTransaction() async throws {
        try await withConnection { sql, connection in
            try await connection.query("BEGIN", logger: logger)
            try await sql.execute("INSERT INTO items (id, n) VALUES (?, ?)", 1, 1)
            try await connection.query("ROLLBACK", logger: logger)
            try await sql.execute("INSERT INTO items (id, n) VALUES (?, ?)", 2, 2)
            #expect(try await sql.query("SELECT id FROM items", []).map { $0.values } == [[.int(2)]])
        }
    }

    @Test("past the capacity, new statements run unnamed and the named ones stay")
    func capacity() async throws {
        try await withConnection(capacity: 2) { sql, connection in
            for id in 1...5 {
                // A different text each time (the IN list grows): five statements.
                let ids = Array(1...id).map { SQLValue.int(Int64($0)) }
                _ = try await sql.query(
                    "SELECT count(*) FROM items WHERE id IN (\(SQLDialect.placeholders(ids.count)))", ids)
            }
            try await sql.execute("INSERT INTO items (id, n) VALUES (?, ?)", 9, 9)
            #expect(try await sql.query("SELECT count(*) FROM items WHERE id IN (?)", [.int(9)]).first?.values == [.int(1)])
            #expect(try await prepared(on: connection).count == 2)
        }
    }

    @Test("statements run together become one statement, and as many as their bound values need")
    func executedTogether() async throws {
        try await withConnection { sql, connection in
            try await sql.execute("INSERT INTO items (id, n) VALUES (?, ?)", 0, 0)
            // An insert and an update of another row: one joined statement.
            try await sql.executeTogether([
                SQLStatement("INSERT INTO items (id, n, note) VALUES (?, ?, ?)", 1, 1, "one"),
                SQLStatement("UPDATE items SET note = ? WHERE id = ?", "zero", 0),
            ])
            #expect(
                try await sql.query("SELECT id, note FROM items ORDER BY id", []).map { $0.values }
                    == [[.int(0), .text("zero")], [.int(1), .text("one")]])
            #expect(try await prepared(on: connection).values.contains { $0.hasPrefix("WITH s0 AS (INSERT") })
            // Counted statements report the rows they changed; the others 0.
            let counted = try await sql.executeTogether([
                SQLStatement("DELETE FROM items WHERE id = ? RETURNING 1", [.int(0)], countsChanges: true),
                SQLStatement("INSERT INTO items (id, n) VALUES (?, ?)", 2, 2),
                SQLStatement("DELETE FROM items WHERE id = ? RETURNING 1", [.int(999)], countsChanges: true),
            ])
            #expect(counted == [1, 0, 0])
            #expect(try await sql.query("SELECT id FROM items ORDER BY id", []).map { $0.values } == [[.int(1)], [.int(2)]])
            // 30 inserts of 200 rows each: 18,000 values, more than one statement may join.
            let inserts = (0..<30).map { chunk in
                let ids = (0..<200).map { 1000 + chunk * 200 + $0 }
                return SQLStatement(
                    "INSERT INTO items (id, n, note) VALUES "
                        + Array(repeating: "(?, ?, ?)", count: ids.count).joined(separator: ", "),
                    ids.flatMap { [SQLValue.int(Int64($0)), .int(Int64(chunk)), .text("bulk")] })
            }
            #expect(inserts.map(\.binds.count).reduce(0, +) > PostgresSQLConnection.maximumJoinedBinds)
            try await sql.executeTogether(inserts)
            #expect(try await sql.query("SELECT count(*) FROM items WHERE note = 'bulk'", []).first?.values == [.int(6000)])
        }
    }

    @Test("a write sent as one statement commits by itself with its NOTIFY; an unmet requirement leaves nothing and throws")
    func oneStatementTransaction() async throws {
        try await withConnection(keelSchema: true) { sql, connection in
            let insert = { (id: Int64) in SQLStatement("INSERT INTO items (id, n) VALUES (?, 1) RETURNING 1", [.int(id)], countsChanges: true) }
            let payload = try await connection.listen(on: "keel_events") { notifications in
                let counts = try await sql.executeAsOneTransaction([insert(1), insert(2)], notifying: ["origin/w"])
                #expect(counts == [1, 1])
                var received = notifications.makeAsyncIterator()
                return try await received.next()?.payload
            }
            #expect(payload == "origin/w")
            // No transaction block was left open (inside the one that wrote, the writer's id stays assigned).
            let openWriter = try await connection.query("SELECT txid_current_if_assigned()::text", logger: logger)
                .collect().first?.decode(String?.self)
            #expect(openWriter == .some(nil))

            let unmet = SQLStatement("UPDATE items SET n = 2 WHERE id = 99 RETURNING 1", [], isRequired: true)
            await #expect(throws: CommitRequirementUnmet.self) {
                _ = try await sql.executeAsOneTransaction([unmet, insert(3)], notifying: ["origin/w"])
            }
            let ids = try await sql.query("SELECT id FROM items ORDER BY id", []).map { try $0.get(0, as: Int.self) }
            #expect(ids == [1, 2])
            let met = SQLStatement("UPDATE items SET n = 3 WHERE id = 1 RETURNING 1", [], isRequired: true)
            #expect(try await sql.executeAsOneTransaction([met, insert(4)], notifying: []) == [1, 1])
            #expect(try await sql.query("SELECT n FROM items WHERE id = 1", []).first?.get(0, as: Int.self) == 3)
        }
    }
}
