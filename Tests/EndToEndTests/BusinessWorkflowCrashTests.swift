import Activities
import Foundation
import KeelSQLite
import KeelTestSupport
import Testing
import WorkflowRuntime
import Workflows

@Suite("Business workflows under worker crashes", .serialized)
struct BusinessWorkflowCrashTests {
    @Test("partner.approval with live providers, its worker SIGKILLed at every pause: it activates, and the provider sees each idempotency key once",
          .timeLimit(.minutes(3)))
    func partnerApprovalSurvivesKills() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try await LoopbackHTTPServer.start()
        defer { Task { await server.shutdown() } }
        let config = scratch.directory.appendingPathComponent("keel.json")
        let base = "\(server.url.absoluteString)/v1"
        try Data("""
            {"channels": {
               "email": {"mode": "live", "baseURL": "\(base)", "credentialVariable": "KEEL_E2E_KEY"},
               "crm": {"mode": "live", "baseURL": "\(base)", "credentialVariable": "KEEL_E2E_KEY"},
               "notifications": {"mode": "live", "baseURL": "\(base)", "credentialVariable": "KEEL_E2E_KEY"}}}
            """.utf8).write(to: config)
        let environment = ["KEEL_CONFIG": config.path, "KEEL_E2E_KEY": "k-e2e"]
        let db = scratch.databaseURL
        #expect(try await WorkerBinary.run(["migrate"], database: db).status == 0)
        let input = PartnerApproval.Input(
            partner: Partner(
                company: "Acme", contactName: "Pat", contactEmail: "pat@acme.example", dealID: "deal-1", owner: "ada"),
            fit: FitSignals(employees: 150, yearsInBusiness: 9, referenceCustomers: 5, regionMatch: true),
            terms: PartnerTerms(revenueSharePercent: 20, paymentTermsDays: 30, territory: "EMEA"),
            sender: "partners@keel.example")
        let inputFile = scratch.directory.appendingPathComponent("partner.json")
        try JSONEncoder().encode(input).write(to: inputFile)
        #expect(try await WorkerBinary.run(
            ["start", PartnerApproval.name, "--id", "acme", "--input", "@\(inputFile.path)"], database: db).status == 0)

        let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
        let client = WorkflowClient(store: store)
        var number = 0
        func startWorker() async throws -> Daemon {
            number += 1
            return try await Daemon(
                database: db, logPath: scratch.logPath, extraArguments: ["--identity", "w\(number)"],
                environment: environment)
        }
        /// Waits until the run pauses at `stage`, then SIGKILLs the worker and starts another.
        func killAt(_ stage: String, _ worker: Daemon) async throws -> Daemon {
            _ = try await eventually("the run waiting at \(stage)", timeout: .seconds(30)) {
                try await client.describe(workflowID: "acme").run.stage == stage ? true : nil
            }
            try await Task.sleep(for: .milliseconds(200))  // the task that set the stage has committed its sends
            await worker.kill()
            return try await startWorker()
        }
        func decide(_ name: String, role: String) async throws {
            let approval = try await eventually("approval \(name)", timeout: .seconds(30)) {
                try await client.approvals(ApprovalQuery(pendingOnly: true)).first { $0.request.name == name }
            }
            let decided = try await WorkerBinary.run(
                ["approve", approval.id, "--by", "\(role)-lead", "--role", role], database: db)
            #expect(decided.status == 0, "\(decided.stderr)")
        }

        var worker = try await startWorker()
        worker = try await killAt("manager-approval", worker)
        try await decide("manager-approval", role: "sales-manager")
        worker = try await killAt("legal-review", worker)
        try await decide("legal-approval", role: "legal")
        worker = try await killAt("negotiating", worker)
        #expect(try await WorkerBinary.run(["signal", "acme", "accept"], database: db).status == 0)
        worker = try await killAt("executive-approval", worker)
        try await decide("executive-approval", role: "executive")

        let runID = try await client.describe(workflowID: "acme").run.runID
        let run = try await client.waitForClose(runID: runID, timeout: .seconds(60))
        _ = try await worker.terminate()
        #expect(run.status == .completed, "\(run.failure?.description ?? "")")
        #expect(run.stage == "active")

        let paths = server.requests.map(\.path)
        #expect(paths == [
            "/v1/deals/deal-1/stage", "/v1/emails", "/v1/deals/deal-1/stage", "/v1/notifications", "/v1/emails",
        ])
        let keys = server.requests.compactMap(\.idempotencyKey)
        #expect(keys.count == 5 && Set(keys).count == 5, "a key reached the provider twice: \(keys)")
        let outbox = try await OutboundLedger(database: WorkflowDatabase(store: store)).outbox(runID: runID)
        #expect(outbox.count == 5 && outbox.allSatisfy { $0.status == "sent" })
        #expect(try await WorkerBinary.run(["replay", "acme"], database: db).status == 0)

        // The evidence pack: exported, verified, and refused with one byte changed.
        let packFile = scratch.directory.appendingPathComponent("acme-evidence.json")
        let exported = try await WorkerBinary.run(["evidence", "acme", "--out", packFile.path], database: db)
        #expect(exported.status == 0, "\(exported.stderr)")
        let verified = try await WorkerBinary.run(["evidence", "verify", packFile.path])
        #expect(verified.status == 0 && verified.stdout.contains("verified"), "\(verified.stderr)")
        var bytes = try Data(contentsOf: packFile)
        let text = String(decoding: bytes, as: UTF8.self)
        let target = try #require(text.range(of: "executive-lead"))
        let offset = text.utf8.distance(from: text.utf8.startIndex, to: target.lowerBound)
        bytes[offset] = UInt8(ascii: "E")
        try bytes.write(to: packFile)
        let refused = try await WorkerBinary.run(["evidence", "verify", packFile.path])
        #expect(refused.status == 1 && refused.stderr.contains("record "), "\(refused.stdout) \(refused.stderr)")
        let stdout = try await WorkerBinary.run(["evidence", "acme"], database: db)
        #expect(stdout.status == 0 && stdout.stdout.contains("keel-evidence/1"))
    }

    @Test("worker demo runs everything — the crash, approvals, long processes and the four business workflows — and prints every OK line",
          .timeLimit(.minutes(2)))
    func demo() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let output = try await WorkerBinary.run(["demo", "--database", scratch.databaseURL])
        #expect(output.status == 0, "\(output.stdout)\n\(output.stderr)")
        let oks = output.stdout.split(separator: "\n").filter { $0.hasPrefix("OK: ") }
        #expect(oks.count == 4, "\(output.stdout)")
        #expect(output.stdout.contains("worker approve") && output.stdout.contains("stage close-preparation"))
    }
}
