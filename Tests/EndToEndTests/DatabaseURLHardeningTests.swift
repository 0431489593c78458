import Foundation
import KeelCLI
import KeelPostgres
import KeelTestSupport
import Logging
import PostgresNIO
import Testing
import WorkflowRuntime

/// Runs the `worker` executable with exactly `arguments`, an environment without any `KEEL_`
/// variable but those given, in `directory`.
/// Runs the CLI with exactly these `KEEL_` variables (none by default), optionally in `directory`.
private func worker(_ arguments: [String], environment: [String: String] = [:], in directory: URL? = nil) async throws -> WorkerBinary.Output {
    try await WorkerBinary.run(arguments, environment: environment, in: directory)
}

/// The parts of every test password; no output may contain any of them.
private let secretParts = ["Zq7Kx", "Wp9Tr"]

/// Passwords holding the characters that derail URL parsers.
private let passwords = ["Zq7KxWp9Tr", "Zq7Kx/Wp9Tr", "Zq7Kx#Wp9Tr", "Zq7Kx?Wp9Tr", "Zq7Kx@Wp9Tr", "Zq7Kx:Wp9Tr", "Zq7Kx%2FWp9Tr"]

private func expectNoSecret(_ output: WorkerBinary.Output, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    for part in secretParts {
        #expect(!output.stdout.contains(part) && !output.stderr.contains(part),
                "\(what) printed the password: \(output.stdout) \(output.stderr)", sourceLocation: sourceLocation)
    }
}

/// Every command, as far as it needs arguments to reach its database.
private let commands: [[String]] = [
    ["list"], ["list", "--json"], ["show", "x"], ["show", "x", "--json"], ["show", "x", "--history"],
    ["start", "diagnostics.sequence", "--id", "x"], ["start", "diagnostics.sequence", "--id", "x", "--json"],
    ["signal", "x", "go"], ["cancel", "x"], ["terminate", "x", "--reason", "r"], ["retry", "x"], ["replay", "x"],
    ["migrate"], ["approvals"], ["approvals", "--json"], ["approvals", "--pending"], ["approvals", "apr-0000000000000000"],
    ["approve", "apr-0000000000000000", "--by", "ada"], ["reject", "apr-0000000000000000", "--by", "ada", "--reason", "no"],
    ["run"], ["run", "--log-level", "trace"],
]

@Suite("Database URLs: no password printed, clear errors for bad URLs and paths", .serialized)
struct DatabaseURLHardeningTests {
    @Test("bad URLs holding a password: no command prints it, and each exits 2")
    func badURLsNeverPrintThePassword() async throws {
        var urls: [String] = []
        for password in passwords {
            urls += ["postgres://root:\(password)@127.0.0.1:notaport/x", "postgresql://root:\(password)@127.0.0.1:5432/",
                     "postgres://root:\(password)@127.0.0.1:5432/x?pool=0", "postgres://root:\(password)@127.0.0.1:5432/x?bogus=1",
                     "postgres://root:\(password)@[::1/x", "postgres://:\(password)@127.0.0.1/x", "mysql://root:\(password)@127.0.0.1/x"]
        }
        for url in urls {
            let outputs = try await withThrowingTaskGroup(of: ([String], WorkerBinary.Output).self) { group in
                for command in commands { group.addTask { (command, try await worker(command + ["--database", url])) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for (command, output) in outputs {
                expectNoSecret(output, "\(command) with \(url)")
                #expect(output.status == 2, "\(command) with \(url): \(output.stderr)")
                #expect(output.stderr.hasPrefix("error: "), "\(command) with \(url): \(output.stderr)")
            }
        }
        // The same through KEEL_DATABASE_URL.
        let fromEnvironment = try await worker(["list"], environment: ["KEEL_DATABASE_URL": "postgres://root:Zq7Kx/Wp9Tr@127.0.0.1:notaport/x"])
        #expect(fromEnvironment.status == 2)
        #expect(fromEnvironment.stderr.contains("'notaport'"))
        expectNoSecret(fromEnvironment, "KEEL_DATABASE_URL")
    }

    @Test("an unreachable server: the message names the server, not the password", .timeLimit(.minutes(1)))
    func unreachableServerNeverPrintsThePassword() async throws {
        let outputs = try await withThrowingTaskGroup(of: WorkerBinary.Output.self) { group in
            for command in [["list", "--json"], ["migrate"], ["start", "diagnostics.sequence", "--id", "x", "--json"]] {
                group.addTask { try await worker(command + ["--database", "postgres://root:Zq7Kx/Wp9Tr@127.0.0.1:1/keel"]) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for output in outputs {
            #expect(output.status == 5)
            #expect(output.stderr.contains("database unreachable: no answer from postgres://root@127.0.0.1:1/keel"))
            expectNoSecret(output, "unreachable")
        }
    }

    @Test("a valid URL with a password of every awkward character: no output, --json or log line contains it",
          .timeLimit(.minutes(2)))
    func validURLNeverPrintsThePassword() async throws {
        try await PostgresTestServer.withFreshDatabase { base in
            // The test server trusts local connections: any password is accepted.
            let parsed = try #require(URLComponents(string: base))
            let hostAndDatabase = "\(parsed.host!):\(parsed.port!)\(parsed.path)"
            let url = "postgres://\(parsed.user!):Zq7Kx/#?@Wp9Tr@\(hostAndDatabase)"
            let scratch = try Scratch()
            defer { scratch.remove() }
            var outputs: [([String], WorkerBinary.Output)] = []
            func run(_ command: [String]) async throws -> WorkerBinary.Output {
                let output = try await worker(command + ["--database", url])
                outputs.append((command, output))
                return output
            }
            #expect(try await run(["migrate"]).stdout.contains("applied"))
            let daemon = try await Daemon(database: url, logPath: scratch.logPath, extraArguments: ["--log-level", "trace"])
            try await Daemon.waitForStart(logPath: scratch.logPath, count: 1)
            #expect(try await run(["start", "diagnostics.sequence", "--id", "s", "--input", "{\"steps\":2}", "--wait", "--timeout", "30", "--json"]).status == 0)
            #expect(try await run(["start", "diagnostics.wait-signal", "--id", "w", "--json"]).status == 0)
            #expect(try await run(["signal", "w", "go"]).status == 0)
            #expect(try await run(["start", "diagnostics.approval", "--id", "a", "--json", "--input",
                                   "{\"summary\": \"s\", \"payload\": {}, \"deadlineSeconds\": 60}"]).status == 0)
            for command in [["list"], ["list", "--json"], ["show", "s", "--history"], ["show", "s", "--json"], ["approvals", "--json"],
                            ["approvals", "--pending"], ["replay", "s"], ["migrate"], ["show", "nobody"], ["signal", "nobody", "go"]] {
                _ = try await run(command)
            }
            #expect(try await daemon.terminate() == 0)
            for (command, output) in outputs { expectNoSecret(output, "\(command)") }
            #expect(outputs.contains { $0.0 == ["list", "--json"] && $0.1.status == 0 && $0.1.stdout.contains("\"s\"") })
            let log = try String(contentsOfFile: scratch.logPath, encoding: .utf8)
            #expect(log.contains("trace"))
            for part in secretParts { #expect(!log.contains(part), "the worker's log holds the password") }
        }
    }

    @Test("the password may come from KEEL_DATABASE_PASSWORD or KEEL_DATABASE_PASSWORD_FILE when the URL has none")
    func passwordFromTheEnvironment() async throws {
        let bare = try StoreLocation(url: "postgres://keel@db.example:5432/keel")
        let scratch = try Scratch()
        defer { scratch.remove() }
        let file = scratch.directory.appendingPathComponent("password").path
        try Data("Zq7Kx/#?@Wp9Tr\n".utf8).write(to: URL(fileURLWithPath: file))
        func password(_ location: StoreLocation) -> String? {
            if case .postgres(let postgres) = location { return postgres.password }
            return nil
        }
        #expect(password(try bare.withPassword(fromEnvironment: ["KEEL_DATABASE_PASSWORD": "Zq7KxWp9Tr"])) == "Zq7KxWp9Tr")
        #expect(password(try bare.withPassword(fromEnvironment: ["KEEL_DATABASE_PASSWORD_FILE": file])) == "Zq7Kx/#?@Wp9Tr")
        #expect(password(try bare.withPassword(fromEnvironment: [:])) == nil)
        let inURL = try StoreLocation(url: "postgres://keel:in%2Furl@db.example/keel")
        #expect(password(try inURL.withPassword(fromEnvironment: ["KEEL_DATABASE_PASSWORD": "other"])) == "in/url")
        #expect(password(try StoreLocation(url: "postgres://keel:Zq7Kx/#?@Wp9Tr@db.example/keel")) == "Zq7Kx/#?@Wp9Tr")
        #expect(try StoreLocation(url: "postgres://keel:Zq7Kx/#?@Wp9Tr@db.example/keel").description == "postgres://keel@db.example:5432/keel")

        // Through the CLI, against the test server (which trusts local connections).
        try await PostgresTestServer.withFreshDatabase { url in
            var components = try #require(URLComponents(string: url))
            components.password = nil
            let withoutPassword = components.string!
            for environment in [["KEEL_DATABASE_PASSWORD": "Zq7Kx/#?@Wp9Tr"], ["KEEL_DATABASE_PASSWORD_FILE": file]] {
                let output = try await worker(["migrate"], environment: environment.merging(["KEEL_DATABASE_URL": withoutPassword]) { $1 })
                #expect(output.status == 0, "\(output.stderr)")
                expectNoSecret(output, "migrate with \(environment.keys)")
            }
            let missing = try await worker(["list", "--database", withoutPassword],
                                           environment: ["KEEL_DATABASE_PASSWORD_FILE": scratch.directory.appendingPathComponent("nothing").path])
            #expect(missing.status == 2)
            #expect(missing.stderr.contains("cannot read KEEL_DATABASE_PASSWORD_FILE"))
            let both = try await worker(["list", "--database", withoutPassword],
                                        environment: ["KEEL_DATABASE_PASSWORD_FILE": file, "KEEL_DATABASE_PASSWORD": "Zq7KxWp9Tr"])
            #expect(both.status == 2)
            #expect(both.stderr.contains("set one"))
            expectNoSecret(both, "both set")
        }
    }

    @Test("--database '' is an error; an empty or unset KEEL_DATABASE_URL means keel.sqlite here")
    func emptyDatabaseURL() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let empty = try await worker(["list", "--database", ""], in: scratch.directory)
        #expect(empty.status == 2)
        #expect(empty.stderr == "error: the database URL is empty\n")
        let emptyMigrate = try await worker(["migrate", "--database", ""], in: scratch.directory)
        #expect(emptyMigrate.status == 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.directory.path).isEmpty)

        let unset = try await worker(["list"], in: scratch.directory)
        #expect(unset.status == 5)
        #expect(unset.stderr.contains("sqlite:keel.sqlite") && unset.stderr.contains("worker migrate"), "\(unset.stderr)")
        #expect(try await worker(["migrate"], environment: ["KEEL_DATABASE_URL": ""], in: scratch.directory).status == 0)
        #expect(FileManager.default.fileExists(atPath: scratch.databasePath))
        let listed = try await worker(["list"], environment: ["KEEL_DATABASE_URL": ""], in: scratch.directory)
        #expect(listed.status == 0)
        #expect(listed.stdout.contains("no runs"))
    }

    @Test("a mistyped sqlite: path is reported and creates nothing; only migrate creates a database, in an existing directory")
    func mistypedSQLitePath() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let missingDirectory = scratch.directory.appendingPathComponent("no-such-dir")
        let inMissingDirectory = missingDirectory.appendingPathComponent("keel.sqlite").path
        for command in commands + [["run", "--migrate"]] {
            let output = try await worker(command + ["--database", "sqlite:\(inMissingDirectory)"])
            #expect(output.status == 5, "\(command): \(output.stderr)")
            #expect(output.stderr.contains(inMissingDirectory) && output.stderr.contains("'\(missingDirectory.path)' does not exist"),
                    "\(command): \(output.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: missingDirectory.path))

        let typo = scratch.directory.appendingPathComponent("kee.sqlite").path
        for command in commands where command != ["migrate"] && command.first != "run" {
            let output = try await worker(command + ["--database", "sqlite:\(typo)"])
            #expect(output.status == 5, "\(command): \(output.stderr)")
            #expect(output.stderr.contains("no database at sqlite:\(typo)") && output.stderr.contains("`worker migrate`"),
                    "\(command): \(output.stderr)")
        }
        let daemon = try await worker(["run", "--database", typo])
        #expect(daemon.status == 5)
        #expect(daemon.stderr.contains("no database at sqlite:\(typo)"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.directory.path).isEmpty)

        let migrated = try await worker(["migrate", "--database", "sqlite:\(typo)"])
        #expect(migrated.status == 0)
        #expect(migrated.stdout.hasPrefix("applied "))
        #expect(try await worker(["list", "--database", typo]).stdout.contains("no runs"))
    }

    @Test("an unknown PostgreSQL database or role is reported at once with the server's message", .timeLimit(.minutes(1)))
    func unknownDatabaseOrRole() async throws {
        let base = URLComponents(string: try PostgresTestServer.url).map { "\($0.host!):\($0.port!)" } ?? ""
        for (url, message) in [("postgres://keel:Zq7KxWp9Tr@\(base)/keel_no_such_db", #"database "keel_no_such_db" does not exist"#),
                               ("postgres://nobody_here:Zq7KxWp9Tr@\(base)/keel", #"role "nobody_here" does not exist"#)] {
            for command in [["list"], ["migrate"], ["run"]] {
                let started = ContinuousClock.now
                let output = try await worker(command + ["--database", url])
                #expect(ContinuousClock.now - started < .seconds(3), "\(command): waited \(ContinuousClock.now - started)")
                #expect(output.status == 5, "\(command): \(output.stderr)")
                #expect(output.stderr.contains("refused the connection: \(message)"), "\(command): \(output.stderr)")
                expectNoSecret(output, "\(command) \(url)")
            }
        }
    }

    @Test("bad PostgreSQL options name the option and the value; exit 2", arguments: [
        ("pool=0", "pool must be at least 1"), ("pool=-3", "pool must be at least 1"), ("pool=abc", "pool 'abc'"),
        ("statement_timeout=0", "statement_timeout '0'"), ("statement_timeout=nan", "statement_timeout 'nan'"),
        ("statement_timeout=inf", "statement_timeout 'inf'"), ("statement_timeout=1e300", "statement_timeout '1e300'"),
        ("idle_in_transaction_timeout=-1", "idle_in_transaction_timeout '-1'"),
        ("idle_in_transaction_timeout=soon", "idle_in_transaction_timeout 'soon'"),
        ("sslmode=maybe", "sslmode 'maybe'"), ("timeout=3", "unsupported option 'timeout'"),
    ])
    func badPostgresOptions(option: String, message: String) async throws {
        let output = try await worker(["list", "--database", "postgres://keel:Zq7KxWp9Tr@127.0.0.1:5432/keel?\(option)"])
        #expect(output.status == 2)
        #expect(output.stderr.contains(message), "\(output.stderr)")
        expectNoSecret(output, option)
    }

    @Test("session timeouts: defaults below the leases, configurable in the URL, and migrations are not cut by them")
    func sessionTimeouts() async throws {
        try await PostgresTestServer.withFreshDatabase { url in
            // A 1 ms statement timeout would cut every migration statement: migrations lift it.
            let migrated = try await worker(["migrate", "--database", url + "?statement_timeout=0.001"])
            #expect(migrated.status == 0, "\(migrated.stderr)")
            #expect(migrated.stdout.hasPrefix("applied "))
            func settings(_ url: String) async throws -> [String] {
                try await StoreLocation(url: url).withStore { store in
                    let postgres = try #require((store as? SQLWorkflowStore)?.postgresDriver)
                    let rows = try await postgres.client.query("SELECT current_setting('idle_in_transaction_session_timeout'), current_setting('statement_timeout')",
                                                               logger: Logger(label: "test"))
                    var values: [String] = []
                    for try await (idle, statement) in rows.decode((String, String).self) { values = [idle, statement] }
                    return values
                }
            }
            #expect(try await settings(url) == ["5s", "30s"])
            #expect(try await settings(url + "?idle_in_transaction_timeout=1.5&statement_timeout=120") == ["1500ms", "2min"])
        }
    }
}
