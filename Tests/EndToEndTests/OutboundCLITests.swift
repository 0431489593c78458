import Activities
import Foundation
import KeelSQLite
import KeelTestSupport
import Testing
import WorkflowRuntime
import Workflows

@Suite("Outbound from the command line: live sends across a SIGKILL, outbox, suppressions, emergency stop, config", .serialized)
struct OutboundCLITests {
    static let secret = "sk_live_E2E_d41d8cd98f"

    static func sendInput(_ recipients: [String], timeoutSeconds: Double = 30) throws -> String {
        let messages = recipients.map {
            OutboundMessage(channel: .email, from: "ann@acme.example", to: $0, subject: "Hello", body: "Hi")
        }
        let input = DiagnosticSend.Input(messages: messages, sendTimeoutSeconds: timeoutSeconds)
        return String(decoding: try JSONEncoder().encode(input), as: UTF8.self)
    }

    @Test("a worker SIGKILLed while the provider holds its request: the retry carries the same Idempotency-Key, the outbox keeps one row, the message is recorded sent once",
          .timeLimit(.minutes(2)))
    func killMidSend() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try await LoopbackHTTPServer.start { request in
            request.attemptOfKey == 1
                ? LoopbackHTTPServer.Response(body: #"{"id": "never-seen"}"#, delay: .seconds(60))
                : .accepted(id: "prov-7")
        }
        defer { Task { await server.shutdown() } }
        let config = scratch.directory.appendingPathComponent("keel.json")
        try Data("""
            {"channels": {"email": {"mode": "live", "baseURL": "\(server.url.absoluteString)/v1",
                                    "credentialVariable": "KEEL_E2E_EMAIL_KEY", "timeoutSeconds": 90}}}
            """.utf8).write(to: config)
        let environment = ["KEEL_CONFIG": config.path, "KEEL_E2E_EMAIL_KEY": Self.secret]
        #expect(try await WorkerBinary.run(["migrate"], database: scratch.databaseURL).status == 0)
        let started = try await WorkerBinary.run(
            ["start", DiagnosticSend.name, "--id", "kill-send", "--input",
             try Self.sendInput(["bob@x.example"], timeoutSeconds: 2)], database: scratch.databaseURL)
        #expect(started.status == 0, "\(started.stderr)")

        let first = try await Daemon(
            database: scratch.databaseURL, logPath: scratch.logPath, extraArguments: ["--identity", "w1"],
            environment: environment)
        _ = try await eventually("the provider holding the first request") { server.requests.isEmpty ? nil : true }
        await first.kill()
        let second = try await Daemon(
            database: scratch.databaseURL, logPath: scratch.logPath, extraArguments: ["--identity", "w2"],
            environment: environment)
        let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
        let client = WorkflowClient(store: store)
        let runID = try await client.describe(workflowID: "kill-send").run.runID
        let run = try await client.waitForClose(runID: runID, timeout: .seconds(60))
        _ = try await second.terminate()
        #expect(run.status == .completed, "\(run.failure?.description ?? "")")

        let requests = server.requests
        #expect(requests.count == 2)
        #expect(Set(requests.compactMap(\.idempotencyKey)).count == 1)
        let outbox = try await OutboundLedger(database: WorkflowDatabase(store: store)).outbox()
        #expect(outbox.count == 1)
        #expect(outbox.first?.status == "sent" && outbox.first?.providerMessageID == "prov-7")
        #expect(outbox.first?.idempotencyKey == requests.first?.idempotencyKey)
        let log = try String(contentsOfFile: scratch.logPath, encoding: .utf8)
        #expect(!log.contains(Self.secret))
        let shown = try await WorkerBinary.run(["show", "kill-send", "--history"], database: scratch.databaseURL)
        #expect(shown.status == 0 && shown.stdout.contains("prov-7") && !shown.stdout.contains(Self.secret))
    }

    @Test("outbox, suppress, unsuppress, suppressions, limits, emergency-stop and config check; bad input exits 2",
          .timeLimit(.minutes(2)))
    func adminCommands() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = scratch.databaseURL
        #expect(try await WorkerBinary.run(["migrate"], database: db).status == 0)

        let suppressed = try await WorkerBinary.run(
            ["suppress", "Eve@Y.example", "--reason", "replied STOP", "--source", "unsubscribe"], database: db)
        #expect(suppressed.status == 0 && suppressed.stdout.contains("suppressed eve@y.example"))
        #expect(try await WorkerBinary.run(["suppress", "@competitor.example", "--reason", "competitor"], database: db)
            .status == 0)
        let list = try await WorkerBinary.run(["suppressions", "--json"], database: db)
        let entries = try JSONDecoder().decode([[String: String]].self, from: Data(list.stdout.utf8))
        #expect(entries.map { $0["address"] } == ["@competitor.example", "eve@y.example"])
        #expect(try await WorkerBinary.run(["suppress", "  ", "--reason", "x"], database: db).status == 2)
        #expect(try await WorkerBinary.run(["suppress", "a@b.example", "--reason", "x", "--source", "whim"], database: db)
            .status == 2)
        #expect(try await WorkerBinary.run(["unsuppress", "nobody@x.example"], database: db).status == 3)

        let noReason = try await WorkerBinary.run(["emergency-stop", "on"], database: db)
        #expect(noReason.status == 2 && noReason.stderr.contains("--reason"))
        #expect(try await WorkerBinary.run(["emergency-stop", "on", "--reason", "bad template", "--by", "ops"], database: db)
            .status == 0)
        let status = try await WorkerBinary.run(["emergency-stop", "status"], database: db)
        #expect(status.stdout.contains("ON") && status.stdout.contains("bad template") && status.stdout.contains("ops"))
        #expect(try await WorkerBinary.run(["emergency-stop", "off"], database: db).status == 0)
        #expect(try await WorkerBinary.run(["emergency-stop", "status"], database: db).stdout.contains("off"))

        // A shadow run (no configuration: every channel shadow) fills the outbox.
        #expect(try await WorkerBinary.run(
            ["start", DiagnosticSend.name, "--id", "shadow-run", "--input",
             try Self.sendInput(["bob@x.example", "eve@y.example"])], database: db).status == 0)
        let daemon = try await Daemon(database: db, logPath: scratch.logPath)
        let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
        let client = WorkflowClient(store: store)
        let runID = try await client.describe(workflowID: "shadow-run").run.runID
        let run = try await client.waitForClose(runID: runID, timeout: .seconds(30))
        _ = try await daemon.terminate()
        #expect(run.status == .completed)

        let outbox = try await WorkerBinary.run(["outbox", "--channel", "email", "--json"], database: db)
        let rows = try JSONDecoder().decode([[String: AnyCodableValue]].self, from: Data(outbox.stdout.utf8))
        #expect(rows.count == 2)
        #expect(Set(rows.compactMap { $0["status"]?.text }) == ["shadowed", "suppressed"])
        let table = try await WorkerBinary.run(["outbox", "--run", run.runID], database: db)
        #expect(table.stdout.contains("bob@x.example") && table.stdout.contains("suppressed"))
        let key = try #require(rows.first?["idempotencyKey"]?.text)
        let shown = try await WorkerBinary.run(["outbox", "show", key], database: db)
        #expect(shown.status == 0 && shown.stdout.contains("\"subject\":\"Hello\""))
        #expect(try await WorkerBinary.run(["outbox", "show", "no-such-key"], database: db).status == 3)
        #expect(try await WorkerBinary.run(["outbox", "--channel", "fax"], database: db).status == 2)
        let limits = try await WorkerBinary.run(["limits"], database: db)
        #expect(limits.status == 0 && limits.stdout.contains("acme.example") && limits.stdout.contains("1"))

        // The configuration file: checked, errors naming the key; a bad file stops `worker run` with exit 2.
        let good = scratch.directory.appendingPathComponent("good.json")
        try Data(#"{"channels": {"sms": {"dailyLimit": 100, "timeZone": "Australia/Sydney"}}}"#.utf8).write(to: good)
        let checked = try await WorkerBinary.run(["config", "check", good.path])
        #expect(checked.status == 0 && checked.stdout.contains("sms: shadow, 100 a day per sender"))
        let bad = scratch.directory.appendingPathComponent("bad.json")
        try Data(#"{"channels": {"email": {"mode": "live", "baseURL": "https://mail.example/v1", "dailyLimit": "lots"}}}"#
            .utf8).write(to: bad)
        let refused = try await WorkerBinary.run(["config", "check", bad.path])
        #expect(refused.status == 2 && refused.stderr.contains("channels.email.dailyLimit"))
        let missing = try await WorkerBinary.run(["config", "check", scratch.directory.appendingPathComponent("none.json").path])
        #expect(missing.status == 2 && missing.stderr.contains("cannot read"))
        let runBad = try await WorkerBinary.run(
            ["run", "--database", db], environment: ["KEEL_CONFIG": bad.path])
        #expect(runBad.status == 2 && runBad.stderr.contains("channels.email.dailyLimit"))
    }
}

extension OutboundCLITests {
    @Test("cadence register, list and show; a document with a bad step exits 2 naming it and registers nothing")
    func cadenceCommands() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = scratch.databaseURL
        #expect(try await WorkerBinary.run(["migrate"], database: db).status == 0)
        let good = scratch.directory.appendingPathComponent("short.json")
        try Data(#"""
            {"id": "short", "version": 1, "name": "Two e-mails", "closeOnDay": 4, "steps": [
              {"day": 1, "channel": "email", "template": "a", "subject": "Hello {{firstName}}", "body": "Hi"},
              {"day": 3, "channel": "email", "template": "b", "subject": "Again", "body": "Hi again"}]}
            """#.utf8).write(to: good)
        let registered = try await WorkerBinary.run(["cadence", "register", good.path], database: db)
        #expect(registered.status == 0 && registered.stdout.contains("registered cadence short version 1"))
        let again = try await WorkerBinary.run(["cadence", "register", good.path], database: db)
        #expect(again.status == 0 && again.stdout.contains("unchanged"))
        let bad = scratch.directory.appendingPathComponent("bad.json")
        try Data(#"""
            {"id": "short", "version": 2, "closeOnDay": 4, "steps": [
              {"day": 1, "channel": "email", "template": "a", "subject": "s", "body": "b"},
              {"day": 2, "channel": "email", "template": "b", "body": "no subject"}]}
            """#.utf8).write(to: bad)
        let refused = try await WorkerBinary.run(["cadence", "register", bad.path], database: db)
        #expect(refused.status == 2 && refused.stderr.contains("steps[1].subject"), "\(refused.stderr)")
        let list = try await WorkerBinary.run(["cadence", "list"], database: db)
        #expect(list.stdout.contains("outreach-21") && list.stdout.contains("Two e-mails"))
        let listed = try await WorkerBinary.run(["cadence", "list", "--json"], database: db)
        let versions = try JSONDecoder().decode([CadenceDocument].self, from: Data(listed.stdout.utf8))
        #expect(versions.map { "\($0.id)@\($0.version)" } == ["outreach-21@1", "short@1"])
        let shown = try await WorkerBinary.run(["cadence", "show", "short", "--json"], database: db)
        let document = try JSONDecoder().decode(CadenceDocument.self, from: Data(shown.stdout.utf8))
        #expect(document.version == 1 && document.steps.count == 2)
        #expect(try await WorkerBinary.run(["cadence", "show", "short", "--version", "2"], database: db).status == 3)
    }
}

/// A JSON value of the outbox's rows (text, number, or null), for reading `--json` output.
enum AnyCodableValue: Decodable {
    case text(String), number(Double), null

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null } else if let text = try? container.decode(String.self) {
            self = .text(text)
        } else { self = .number(try container.decode(Double.self)) }
    }

    var text: String? { if case .text(let value) = self { value } else { nil } }
}
