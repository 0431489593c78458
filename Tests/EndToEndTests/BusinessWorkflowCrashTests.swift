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
        // A long provider timeout: the provider is this test process's server, which the whole
        // suite's load can stall for seconds; a request that timed out would be sent again (with
        // its key, as it should), and this test asks for each key exactly once.
        try Data("""
            {"channels": {
               "email": {"mode": "live", "baseURL": "\(base)", "credentialVariable": "KEEL_E2E_KEY", "timeoutSeconds": 60},
               "crm": {"mode": "live", "baseURL": "\(base)", "credentialVariable": "KEEL_E2E_KEY", "timeoutSeconds": 60},
               "notifications": {"mode": "live", "baseURL": "\(base)", "credentialVariable": "KEEL_E2E_KEY",
                                 "timeoutSeconds": 60}}}
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
            // Paused there: at the stage with no activity in flight (a kill mid-send would send
            // again, with the same key — allowed, but this test asks for each key exactly once).
            _ = try await eventually("the run waiting at \(stage)", timeout: .seconds(30)) { () async throws -> Bool? in
                let described = try await client.describe(workflowID: "acme")
                return described.run.stage == stage && described.pending.activities.isEmpty ? true : nil
            }
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

    /// A scratch database, a loopback provider for every channel in live mode, and a worker
    /// process that can be killed at a stage and replaced.
    final class Harness {
        let scratch: Scratch
        let server: LoopbackHTTPServer
        let environment: [String: String]
        let store: SQLWorkflowStore
        let client: WorkflowClient
        var worker: Daemon?
        var number = 0
        var db: String { scratch.databaseURL }

        init() async throws {
            let scratch = try Scratch()
            self.scratch = scratch
            let server = try await LoopbackHTTPServer.start { request in
                switch (request.method, request.path) {
                case ("POST", "/v1/signature-requests"): .accepted(id: "sr-\(request.idempotencyKey?.count ?? 0)")
                case ("GET", _): LoopbackHTTPServer.Response(body: #"{"status": "pending"}"#)
                default: .accepted(id: "prov-\(UUID().uuidString.prefix(8))")
                }
            }
            self.server = server
            let config = scratch.directory.appendingPathComponent("keel.json")
            let channels = OutboundChannel.allCases.map {
                #""\#($0.rawValue)": {"mode": "live", "baseURL": "\#(server.url.absoluteString)/v1", "credentialVariable": "KEEL_E2E_KEY"}"#
            }
            try Data("{\"channels\": {\(channels.joined(separator: ", "))}}".utf8).write(to: config)
            environment = ["KEEL_CONFIG": config.path, "KEEL_E2E_KEY": "k-e2e"]
            let migrated = try await WorkerBinary.run(["migrate"], database: scratch.databaseURL)
            guard migrated.status == 0 else { throw DaemonError(description: "migrate failed: \(migrated.stderr)") }
            let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
            self.store = store
            client = WorkflowClient(store: store)
        }

        func start<W: Workflow>(_ workflow: W.Type, id: String, input: W.Input) async throws {
            let file = scratch.directory.appendingPathComponent("\(id).json")
            try JSONEncoder().encode(input).write(to: file)
            let started = try await WorkerBinary.run(["start", W.name, "--id", id, "--input", "@\(file.path)"], database: db)
            #expect(started.status == 0, "\(started.stderr)")
            try await restartWorker()
        }

        func restartWorker() async throws {
            if let worker { await worker.kill() }
            number += 1
            worker = try await Daemon(
                database: db, logPath: scratch.logPath, extraArguments: ["--identity", "w\(number)"],
                environment: environment)
        }

        /// Waits until `id` pauses at `stage`, then SIGKILLs the worker and starts another.
        func kill(_ id: String, at stage: String) async throws {
            // Paused there: at the stage with no activity in flight (a kill mid-send would send
            // again, with the same key — allowed, but these tests ask for each key exactly once).
            _ = try await eventually("\(id) at \(stage)", timeout: .seconds(30)) { () async throws -> Bool? in
                guard let described = try? await self.client.describe(workflowID: id) else { return nil }  // not yet
                return described.run.stage == stage && described.pending.activities.isEmpty ? true : nil
            }
            try await restartWorker()
        }

        func approve(_ name: String, role: String) async throws {
            let approval = try await eventually("approval \(name)", timeout: .seconds(30)) {
                try await self.client.approvals(ApprovalQuery(pendingOnly: true)).first { $0.request.name == name }
            }
            let decided = try await WorkerBinary.run(["approve", approval.id, "--by", "\(role)-lead", "--role", role], database: db)
            #expect(decided.status == 0, "\(decided.stderr)")
        }

        func signal(_ id: String, _ name: String, payload: String = "{}") async throws {
            let sent = try await WorkerBinary.run(["signal", id, name, "--payload", payload], database: db)
            #expect(sent.status == 0, "\(sent.stderr)")
        }

        /// Waits for the run to close and stops the worker; checks every POST reached the provider
        /// with its own idempotency key, and the outbox holds each once, sent.
        func finish(_ id: String) async throws -> WorkflowRun {
            let runID = try await client.describe(workflowID: id).run.runID
            let run = try await client.waitForClose(runID: runID, timeout: .seconds(60))
            _ = try await worker?.terminate()
            worker = nil
            let keys = server.requests.filter { $0.method == "POST" }.compactMap(\.idempotencyKey)
            #expect(Set(keys).count == keys.count, "a key reached the provider twice: \(keys)")
            let outbox = try await OutboundLedger(database: WorkflowDatabase(store: store)).outbox(limit: 1000)
            #expect(Set(outbox.map(\.idempotencyKey)) == Set(keys))
            #expect(outbox.allSatisfy { $0.status == "sent" || $0.status == "manualRequired" })
            #expect(try await WorkerBinary.run(["replay", id], database: db).status == 0)
            return run
        }

        func close() async {
            if let worker { await worker.kill() }
            await server.shutdown()
            scratch.remove()
        }
    }

    @Test("dd.room, its worker SIGKILLed while workstreams wait for review and while the IC decides: close preparation, each key once",
          .timeLimit(.minutes(3)))
    func dueDiligenceSurvivesKills() async throws {
        let harness = try await Harness()
        let evidence = [
            "legal": DDEvidence(
                workstream: "legal", documents: [], issues: [DDIssue(title: "Change-of-control clause", severity: 5)])
        ]
        try await harness.start(
            DueDiligenceRoom.self, id: "dd",
            input: .init(
                dealID: "deal-dd", target: "Target", targetContact: "cfo@target.example", dealLead: "dana",
                sender: "deals@keel.example", evidence: evidence))
        try await harness.kill("dd/legal/1", at: "awaiting-review")
        try await harness.approve("legal-review", role: "dd-legal")
        try await harness.kill("dd", at: "ic-review")
        try await harness.approve("ic-review", role: "investment-committee")
        let run = try await harness.finish("dd")
        #expect(run.status == .completed && run.stage == "close-preparation")
        #expect(harness.server.requests.map(\.path).contains("/v1/rooms"))
        await harness.close()
    }

    @Test("signature.term-sheet, its worker SIGKILLed awaiting approval and awaiting the signature: signed, evidence filed, each key once",
          .timeLimit(.minutes(3)))
    func signatureSurvivesKills() async throws {
        let harness = try await Harness()
        try await harness.start(
            TermSheetSignature.self, id: "sig",
            input: .init(
                dealID: "deal-s", company: "Acme", title: "Term sheet", terms: "Revenue share 20%.",
                signers: [.init(name: "Pat", email: "pat@acme.example")], parties: ["ada"], pollIntervalSeconds: 3600))
        try await harness.kill("sig", at: "approval")
        try await harness.approve("terms-approval", role: "legal")
        try await harness.kill("sig", at: "awaiting-signature")
        let requestID = try #require(
            harness.server.requests.first { $0.path == "/v1/signature-requests" }.map { "sr-\($0.idempotencyKey?.count ?? 0)" })
        try await harness.signal("sig", "signed", payload: #"{"requestID": "\#(requestID)", "by": "Pat"}"#)
        let run = try await harness.finish("sig")
        #expect(run.status == .completed && run.stage == "signed")
        #expect(harness.server.requests.contains { $0.path.hasPrefix("/v1/rooms/deal-s/documents") })
        await harness.close()
    }

    @Test("outreach.cadence in co-pilot mode, its worker SIGKILLed awaiting the drafts' approval and while paused: exits on the reply, each key once",
          .timeLimit(.minutes(3)))
    func cadenceSurvivesKills() async throws {
        let harness = try await Harness()
        try await harness.start(
            OutreachCadence.self, id: "cad",
            input: .init(
                lead: .init(firstName: "Sam", email: "sam@prospect.example", company: "Prospect"),
                sender: "ann@keel.example", linkedInSeat: "seat", mode: .copilot))
        try await harness.kill("cad", at: "awaiting-draft-approval")
        try await harness.approve("drafts-day-1", role: "sdr-lead")
        _ = try await eventually("the day-1 e-mail", timeout: .seconds(30)) {
            harness.server.requests.contains { $0.path == "/v1/emails" } ? true : nil
        }
        try await harness.signal("cad", "pause")
        try await harness.kill("cad", at: "paused")
        try await harness.signal("cad", "resume")
        try await harness.signal("cad", "reply")
        let run = try await harness.finish("cad")
        #expect(run.status == .completed && run.stage == "exited-reply")
        #expect(harness.server.requests.filter { $0.path == "/v1/emails" }.count == 1)
        await harness.close()
    }
}
