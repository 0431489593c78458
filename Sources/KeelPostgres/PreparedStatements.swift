import PostgresNIO
import Synchronization

/// Names the store core's statements so that each pooled connection parses (and, once PostgreSQL
/// settles on a generic plan, plans) a statement once, instead of on every run of it.
///
/// A statement is its SQL text with the types of its bound values: a `NULL` leaves a parameter's
/// type to the server, so the same SQL with a `NULL` in another place is another statement. Each
/// gets a name (`keel_1`, `keel_2`, ...) that means the same statement in every connection of the
/// process; PostgresNIO prepares it on a connection the first time that connection runs it
/// (`Parse`), and runs it by name afterwards (`Bind`/`Execute` only).
///
/// The core composes a few texts from counts (multi-row `VALUES`, `IN (...)` lists), so the
/// number of statements is bounded but not small: past ``capacity`` names, further new statements
/// run unnamed, as they did before (parsed and planned each time), which keeps the memory each
/// connection holds on the server bounded.
///
/// Named statements outlive transactions (PostgreSQL keeps them for the session, also when the
/// transaction that prepared them rolls back) and die with their connection: the pool's new
/// connection after a cut or a server restart prepares them again. A migration that changes a
/// table makes PostgreSQL re-plan the statements that use it.
package final class PreparedStatements: Sendable {
    /// A statement the core runs: its text with numbered placeholders, and the types it binds.
    struct Statement: Sendable {
        let name: String
        let sql: String
        let bindingTypes: [PostgresDataType]
    }

    private struct Key: Hashable {
        let sql: String
        let bindingTypes: [PostgresDataType]
    }

    /// Most statements given a name; later ones run unnamed.
    package let capacity: Int
    private let named = Mutex<[Key: Statement]>([:])

    package init(capacity: Int = 1000) {
        self.capacity = capacity
    }

    /// The named statement for `sql` (with `?` placeholders) binding values of `types` (`.null`
    /// where a `NULL` is bound), or `nil` once ``capacity`` statements have names and this one has none.
    func statement(for sql: String, types: [PostgresDataType]) -> Statement? {
        let key = Key(sql: sql, bindingTypes: types)
        return named.withLock { named in
            if let statement = named[key] { return statement }
            guard named.count < capacity else { return nil }
            let statement = Statement(
                name: "keel_\(named.count + 1)", sql: PostgresSQLConnection.numberingPlaceholders(sql),
                bindingTypes: types)
            named[key] = statement
            return statement
        }
    }
}

/// The one `PostgresPreparedStatement` type the core's statements run as.
///
/// PostgresNIO takes a prepared statement's name, SQL and parameter types from static properties
/// of its type, made for statements written out in code; the core composes its statements at run
/// time. These properties therefore read the statement bound to the running task
/// (``PreparedStatements/Statement`` in ``current``), which `PostgresConnection.execute(_:logger:)`
/// reads before it sends anything.
struct CoreStatement: PostgresPreparedStatement {
    typealias Row = PostgresRow

    @TaskLocal static var current: PreparedStatements.Statement?

    static var name: String { current?.name ?? "" }
    static var sql: String { current?.sql ?? "" }
    static var bindingDataTypes: [PostgresDataType] { current?.bindingTypes ?? [] }

    let bindings: PostgresBindings

    func makeBindings() throws -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}
