/// One numbered schema change of a backend (`0001_initial`, ...), applied once per database in
/// order of its name. Each backend compiles its own list into the binary, with the same numbers
/// and meanings on every backend.
package struct SchemaMigration: Sendable {
    package var name: String
    package var sql: String

    package init(name: String, sql: String) {
        self.name = name
        self.sql = sql
    }
}
