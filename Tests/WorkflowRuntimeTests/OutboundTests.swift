import Activities
import Foundation
import KeelCLI
import KeelTestSupport
import Logging
import Synchronization
import Testing
import WorkflowRuntime
import WorkflowTesting
import Workflows

/// Collects every log line (message and metadata) of the loggers it makes.
final class CapturedLogs: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }

    func logger() -> Logger {
        var logger = Logger(label: "captured") { _ in Handler(sink: self) }
        logger.logLevel = .trace
        return logger
    }

    fileprivate func append(_ line: String) { lines.withLock { $0.append(line) } }

    private struct Handler: LogHandler {
        let sink: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            sink.append("\(event.level) \(event.message) \(all)")
        }
    }
}

@Suite("Outbound: provider HTTP, shadow outbox, suppression, daily limits, emergency stop")
struct OutboundTests {
    static let sydneyEvening = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15T08:00Z, 19:00 in Sydney

    static func email(_ to: String, from: String = "ann@acme.example") -> OutboundMessage {
        OutboundMessage(channel: .email, from: from, to: to, subject: "Hello", body: "Hi there", template: "intro")
    }

    static func liveEmail(_ server: LoopbackHTTPServer, timeout: Duration = .seconds(5), dailyLimit: Int? = nil)
        -> OutboundConfiguration
    {
        OutboundConfiguration(
            channels: [
                .email: ChannelConfiguration(
                    mode: .live, baseURL: server.url.appendingPathComponent("v1"),
                    credentialVariable: "KEEL_TEST_EMAIL_KEY", timeout: timeout, dailyLimit: dailyLimit)
            ], emergencyStopRecheck: .seconds(60))
    }

    static let secret = "sk_live_TOPSECRET_5f2c9a"

    /// A time-skipping environment whose registry sends through a gateway on the same database.
    func withEnvironment(
        _ backend: StoreBackend, configuration: OutboundConfiguration, logger: Logger? = nil,
        _ body: (TestWorkflowEnvironment, OutboundLedger) async throws -> Void
    ) async throws {
        try await backend.withStore { store in
            let database = WorkflowDatabase(store: store)
            let gateway = try OutboundGateway(
                database: database, configuration: configuration, environment: ["KEEL_TEST_EMAIL_KEY": Self.secret])
            var registry = WorkflowRegistry()
            registry.register(DiagnosticSend.self)
            registry.registerOutboundActivities(gateway: gateway)
            let env = TestWorkflowEnvironment(
                registry: registry, store: store, startTime: Self.sydneyEvening, logger: logger)
            defer { env.shutdown() }
            try await body(env, gateway.ledger)
        }
    }

    @Test("shadow mode records one outbox row per send and never opens a connection", arguments: StoreBackend.allCases)
    func shadowNeverConnects(backend: StoreBackend) async throws {
        let server = try await LoopbackHTTPServer.start()
        defer { Task { await server.shutdown() } }
        var configuration = Self.liveEmail(server)
        configuration.channels[.email]?.mode = .shadow  // the provider is configured, but the channel is shadow
        try await withEnvironment(backend, configuration: configuration) { env, ledger in
            let handle = try await env.client.start(
                DiagnosticSend.self, id: "shadow", input: .init(messages: [Self.email("bob@x.example"), Self.email("cy@y.example")]))
            let receipts = try await env.result(of: handle, as: DiagnosticSend.self)
            #expect(receipts.map(\.status) == [.shadowed, .shadowed])
            let outbox = try await ledger.outbox(runID: handle.runID)
            #expect(Set(outbox.map(\.idempotencyKey)) == Set(receipts.map(\.idempotencyKey)))
            #expect(outbox.allSatisfy { $0.status == "shadowed" && $0.mode == "shadow" && $0.workflowID == "shadow" })
            let message = try JSONDecoder().decode(OutboundMessage.self, from: Data(try #require(outbox.first).message.utf8))
            #expect(message.subject == "Hello" && message.template == "intro")
        }
        #expect(server.connections == 0)
        #expect(server.requests.isEmpty)
    }

    @Test("live: 503, then a timeout, then 200 — every attempt carries the same Idempotency-Key; the message id is recorded")
    func sameKeyOnEveryRetry() async throws {
        let server = try await LoopbackHTTPServer.start { request in
            switch request.attemptOfKey {
            case 1: LoopbackHTTPServer.Response(status: 503, body: #"{"message": "try later"}"#)
            case 2: LoopbackHTTPServer.Response(status: 200, body: #"{"id": "too-late"}"#, delay: .seconds(10))
            default: .accepted(id: "prov-42")
            }
        }
        defer { Task { await server.shutdown() } }
        try await withEnvironment(.sqlite, configuration: Self.liveEmail(server, timeout: .seconds(2))) { env, ledger in
            let handle = try await env.client.start(
                DiagnosticSend.self, id: "retried", input: .init(messages: [Self.email("bob@x.example")]))
            let receipt = try #require(try await env.result(of: handle, as: DiagnosticSend.self).first)
            #expect(receipt.status == .sent && receipt.providerMessageID == "prov-42")
            let requests = server.requests
            // 503, timeout, 200 — a loaded machine may time out once more; every attempt has the same key.
            #expect(requests.count >= 3)
            #expect(requests.allSatisfy { $0.idempotencyKey == receipt.idempotencyKey })
            #expect(requests.allSatisfy { $0.method == "POST" && $0.path == "/v1/emails" })
            #expect(requests.allSatisfy { $0.headers["authorization"] == "Bearer \(Self.secret)" })
            let body = try JSONSerialization.jsonObject(with: Data(requests[0].body.utf8)) as? [String: String]
            #expect(body == ["from": "ann@acme.example", "to": "bob@x.example", "subject": "Hello", "body": "Hi there"])
            let row = try #require(try await ledger.outboxEntry(receipt.idempotencyKey))
            #expect(row.status == "sent" && row.providerMessageID == "prov-42" && row.attempts == requests.count)
            #expect(try await ledger.outbox().count == 1)
        }
    }

    @Test("live: 429 with Retry-After: 2 is retried 2 s later on the workflow clock, not at the policy's 200 ms")
    func retryAfterIsHonoured() async throws {
        let server = try await LoopbackHTTPServer.start { request in
            request.attemptOfKey == 1
                ? LoopbackHTTPServer.Response(status: 429, headers: ["Retry-After": "2"], body: #"{"message": "slow down"}"#)
                : .accepted(id: "prov-1")
        }
        defer { Task { await server.shutdown() } }
        try await withEnvironment(.sqlite, configuration: Self.liveEmail(server)) { env, ledger in
            let handle = try await env.client.start(
                DiagnosticSend.self, id: "throttled", input: .init(messages: [Self.email("bob@x.example")]))
            let receipt = try #require(try await env.result(of: handle, as: DiagnosticSend.self).first)
            #expect(server.requests.count == 2)
            let row = try #require(try await ledger.outboxEntry(receipt.idempotencyKey))
            let waited = try #require(row.sentAt).timeIntervalSince(row.createdAt)
            #expect(waited >= 2 && waited < 2.5, "the retry came \(waited) s after the first attempt")
        }
    }

    @Test("live: 400 fails the send at once, with the provider's message in the workflow's failure")
    func badRequestIsNotRetried() async throws {
        let server = try await LoopbackHTTPServer.start { _ in
            LoopbackHTTPServer.Response(status: 400, body: #"{"error": {"message": "recipient domain has no MX record"}}"#)
        }
        defer { Task { await server.shutdown() } }
        try await withEnvironment(.sqlite, configuration: Self.liveEmail(server)) { env, ledger in
            let handle = try await env.client.start(
                DiagnosticSend.self, id: "refused", input: .init(messages: [Self.email("bob@x.example")]))
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .failed)
            let cause = try #require(run.failure?.cause)
            #expect(cause.type == "ProviderRejected" && cause.nonRetryable)
            #expect(cause.message.contains("recipient domain has no MX record") && cause.message.contains("400"))
            #expect(run.failure?.attempts == 1)
            #expect(server.requests.count == 1)
            #expect(try await ledger.outbox().first?.status == "failed")
        }
    }

    @Test("the credential appears in no log line, history event, error or outbox row — even when the provider echoes it")
    func credentialsNeverLeak() async throws {
        let server = try await LoopbackHTTPServer.start { request in
            request.attemptOfKey == 1
                ? LoopbackHTTPServer.Response(status: 503, body: #"{"message": "overloaded for key \#(Self.secret)"}"#)
                : LoopbackHTTPServer.Response(status: 401, body: #"{"message": "key \#(Self.secret) revoked"}"#)
        }
        defer { Task { await server.shutdown() } }
        let logs = CapturedLogs()
        try await withEnvironment(.sqlite, configuration: Self.liveEmail(server), logger: logs.logger()) { env, ledger in
            let handle = try await env.client.start(
                DiagnosticSend.self, id: "leaky", input: .init(messages: [Self.email("bob@x.example")]))
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .failed)
            #expect(server.requests.count == 2 && server.requests.allSatisfy { $0.headers["authorization"] != nil })
            let description = try await env.client.describe(workflowID: "leaky", includeHistory: true)
            let history = try JSONEncoder().encode(description.history ?? [])
            #expect(!String(decoding: history, as: UTF8.self).contains(Self.secret))
            #expect(!String(describing: run.failure).contains(Self.secret))
            #expect(String(describing: run.failure).contains("[credential]"))
            for row in try await ledger.outbox() {
                #expect(!"\(row)".contains(Self.secret))
            }
        }
        #expect(!logs.all.isEmpty, "the engine logged the failed attempts")
        #expect(logs.all.allSatisfy { !$0.contains(Self.secret) })
    }

    @Test("a suppressed address or domain is never sent to, in shadow and in live mode", arguments: [false, true])
    func suppressedIsNeverSent(live: Bool) async throws {
        let server = try await LoopbackHTTPServer.start()
        defer { Task { await server.shutdown() } }
        var configuration = Self.liveEmail(server)
        if !live { configuration.channels[.email]?.mode = .shadow }
        try await withEnvironment(.sqlite, configuration: configuration) { env, ledger in
            try await ledger.suppress("Bob@X.example", reason: "replied STOP", source: .unsubscribe)
            try await ledger.suppress("@competitor.example", reason: "competitor", source: .manual)
            let messages = [Self.email("bob@x.example"), Self.email("eve@competitor.example"), Self.email("cy@y.example")]
            let handle = try await env.client.start(DiagnosticSend.self, id: "suppressed", input: .init(messages: messages))
            let receipts = try await env.result(of: handle, as: DiagnosticSend.self)
            #expect(receipts.map(\.status) == [.suppressed, .suppressed, live ? .sent : .shadowed])
            #expect(receipts[0].detail?.contains("unsubscribe") == true)
            #expect(server.requests.map { $0.body.contains("cy@y.example") } == (live ? [true] : []))
            #expect(server.requests.allSatisfy { !$0.body.contains("bob@x.example") && !$0.body.contains("competitor") })
            #expect(try await ledger.suppression(of: "EVE@competitor.example")?.address == "@competitor.example")
            #expect(try await ledger.unsuppress("bob@x.example"))
            #expect(try await ledger.suppression(of: "bob@x.example") == nil)
        }
    }

    @Test("a send over the sender's daily limit waits for the next day in the sender's zone, then goes once",
          arguments: StoreBackend.allCases)
    func dailyLimitDefersToTomorrow(backend: StoreBackend) async throws {
        let configuration = OutboundConfiguration(channels: [
            .email: ChannelConfiguration(dailyLimit: 2, timeZone: "Australia/Sydney")
        ])
        try await withEnvironment(backend, configuration: configuration) { env, ledger in
            let messages = ["a", "b", "c"].map { Self.email("\($0)@x.example") }
            let handle = try await env.client.start(DiagnosticSend.self, id: "limited", input: .init(messages: messages))
            let receipts = try await env.result(of: handle, as: DiagnosticSend.self)
            #expect(receipts.map(\.status) == [.shadowed, .shadowed, .shadowed])
            let counts = try await ledger.sendCounts()
            #expect(counts.map { "\($0.day) \($0.sender) \($0.sent)" } == ["2027-01-16 acme.example 1", "2027-01-15 acme.example 2"])
            let third = try #require(try await ledger.outboxEntry(receipts[2].idempotencyKey))
            #expect(third.attempts == 2)
            // Sydney's 2027-01-16 begins at 13:00 UTC on the 15th (AEDT, UTC+11): the third waited until then.
            let midnight = try Date("2027-01-15T13:00:00Z", strategy: .iso8601)
            let closed = try #require(try await env.client.describe(workflowID: "limited").run.closedAt)
            #expect(closed >= midnight && closed < midnight.addingTimeInterval(60))
            #expect(try await ledger.outbox().count == 3)
        }
    }

    @Test("the emergency stop holds 100 pending sends; switched off, each goes out exactly once")
    func emergencyStopHoldsAndReleases() async throws {
        let server = try await LoopbackHTTPServer.start()
        defer { Task { await server.shutdown() } }
        // A long timeout: under the whole suite's load a 5 s one expired on a request the server
        // had taken, and its retry (same key, as it should) was a second request.
        try await withEnvironment(.sqlite, configuration: Self.liveEmail(server, timeout: .seconds(60))) { env, ledger in
            try await ledger.setEmergencyStop(true, reason: "wrong template in the cadence", by: "ops")
            let messages = (1...100).map { Self.email("lead\($0)@x.example") }
            let handle = try await env.client.start(
                DiagnosticSend.self, id: "held", input: .init(messages: messages, parallel: true))
            try await env.runUntilIdle()
            for _ in 0..<5 { try await env.advance(by: .seconds(61)) }
            #expect(server.requests.isEmpty)
            let held = try await ledger.outbox(limit: 1000)
            #expect(held.count == 100 && held.allSatisfy { $0.status == "held" && $0.attempts >= 5 })
            #expect(held.first?.detail?.contains("wrong template") == true)
            #expect(try await env.client.describe(workflowID: "held").run.status == .running)

            try await ledger.setEmergencyStop(false, reason: nil, by: "ops")
            let receipts = try await env.result(of: handle, as: DiagnosticSend.self)
            #expect(receipts.count == 100 && receipts.allSatisfy { $0.status == .sent })
            let keys = server.requests.compactMap(\.idempotencyKey)
            #expect(
                keys.count == 100 && Set(keys) == Set(receipts.map(\.idempotencyKey)),
                "\(keys.count) requests with \(Set(keys).count) distinct keys; \(server.requests.count) requests in all")
            #expect(try await ledger.outbox(limit: 1000).allSatisfy { $0.status == "sent" })
        }
    }

    @Test("a live send held by the emergency stop after the provider's 503 counts once against its sender's day")
    func heldAfterAttemptCountsOnce() async throws {
        let server = try await LoopbackHTTPServer.start { request in
            request.attemptOfKey == 1
                ? LoopbackHTTPServer.Response(status: 503, headers: ["Retry-After": "10"], body: "{}")
                : .accepted(id: "prov-9")
        }
        defer { Task { await server.shutdown() } }
        try await withEnvironment(.sqlite, configuration: Self.liveEmail(server, dailyLimit: 5)) { env, ledger in
            let handle = try await env.client.start(
                DiagnosticSend.self, id: "held-late", input: .init(messages: [Self.email("bob@x.example")]))
            try await env.runUntilIdle()
            #expect(server.requests.count == 1)
            try await ledger.setEmergencyStop(true, reason: "pause", by: "ops")
            try await env.advance(by: .seconds(11))
            #expect(try await ledger.outbox().first?.status == "held")
            try await ledger.setEmergencyStop(false, reason: nil, by: "ops")
            let receipt = try #require(try await env.result(of: handle, as: DiagnosticSend.self).first)
            #expect(receipt.status == .sent && server.requests.count == 2)
            #expect(try await ledger.sendCounts().map(\.sent) == [1])
        }
    }

    @Test("two workers sending at once on PostgreSQL never pass a sender's daily limit")
    func twoWorkersShareALimit() async throws {
        try await PostgresTestServer.withFreshDatabase { url in
            try await StoreLocation(url: url + "?pool=8").withStore { first in
                try await first.migrate()
                try await StoreLocation(url: url + "?pool=8").withStore { second in
                    try await self.sendConcurrently(stores: [first, second])
                }
            }
        }
    }

    private func sendConcurrently(stores: [any WorkflowStore]) async throws {
        let configuration = OutboundConfiguration(channels: [.email: ChannelConfiguration(dailyLimit: 25)])
        var started: [Worker] = []
        for store in stores {
            var registry = WorkflowRegistry()
            registry.register(DiagnosticSend.self)
            registry.registerOutboundActivities(
                gateway: try OutboundGateway(database: WorkflowDatabase(store: store), configuration: configuration))
            var logger = Logger(label: "test")
            logger.logLevel = .error
            started.append(
                Worker(
                    store: store, registry: registry,
                    configuration: WorkerConfiguration(activityTaskSlots: 32, pollInterval: .milliseconds(20)),
                    logger: logger))
        }
        let client = WorkflowClient(store: stores[0])
        let workers = started
        let ledger = try OutboundLedger(database: WorkflowDatabase(store: stores[0]))
        try await workers[0].withRunning {
            try await workers[1].withRunning {
                for batch in 0..<6 {
                    let messages = (0..<10).map { Self.email("lead\(batch)-\($0)@x.example") }
                    _ = try await client.start(
                        workflowType: DiagnosticSend.name, id: "batch-\(batch)",
                        input: try Payload.encode(DiagnosticSend.Input(messages: messages, parallel: true)))
                }
                _ = try await eventually("all 60 sends decided", timeout: .seconds(30)) { () async throws -> Bool? in
                    let rows = try await ledger.outbox(limit: 1000)
                    let decided = rows.count == 60 && rows.allSatisfy { $0.status == "shadowed" || $0.status == "deferred" }
                    return decided ? true : nil
                }
            }
        }
        let rows = try await ledger.outbox(limit: 1000)
        #expect(rows.filter { $0.status == "shadowed" }.count == 25)
        #expect(rows.filter { $0.status == "deferred" }.count == 35)
        #expect(try await ledger.sendCounts().map(\.sent) == [25])
    }
}

/// Calls every provider operation once, as the business workflows will.
struct ProviderTour: Workflow {
    static let name = "test.provider-tour"

    func run(context: WorkflowContext, input dealID: String) async throws -> [String] {
        var done: [String] = []
        func note(_ receipt: ProviderReceipt) -> ProviderReceipt {
            done.append("\(receipt.status.rawValue):\(receipt.providerID ?? "-")")
            return receipt
        }
        _ = note(try await context.execute(
            UpsertCRMContact.self, CRMContact(email: "ceo@partner.example", name: "Pat", company: "Partner")))
        _ = note(try await context.execute(SetCRMDealStage.self, DealStageChange(dealID: dealID, stage: "negotiating")))
        _ = note(try await context.execute(AddCRMNote.self, CRMNote(dealID: dealID, text: "terms sent")))
        let request = note(try await context.execute(
            CreateSignatureRequest.self,
            SignatureRequest(
                documentName: "term-sheet.pdf", documentSHA256: String(repeating: "ab", count: 32),
                signers: [.init(name: "Pat", email: "ceo@partner.example")])))
        done.append(try await context.execute(SignatureRequestStatus.self, request.providerID ?? "shadow").rawValue)
        _ = note(try await context.execute(
            VoidSignatureRequest.self, SignatureVoid(requestID: request.providerID ?? "shadow", reason: "expired")))
        let room = note(try await context.execute(CreateDataRoom.self, DataRoom(name: "DD", dealID: dealID)))
        _ = note(try await context.execute(
            UploadDocument.self,
            DocumentUpload(roomID: room.providerID ?? "shadow", name: "cap-table.xlsx", contentSHA256: "cd")))
        _ = note(try await context.execute(ArchiveDataRoom.self, RoomArchive(roomID: room.providerID ?? "shadow", reason: "rejected")))
        _ = note(try await context.execute(
            NotifyTeam.self, TeamNotification(recipients: ["role:legal"], subject: "DD rejected", body: "archived")))
        return done
    }
}

extension OutboundTests {
    @Test("CRM, e-signature, document store and notifications: shadow records each call in the outbox; live calls the provider with the idempotency key, ids kept one path segment",
          arguments: [false, true])
    func providerOperations(live: Bool) async throws {
        let server = try await LoopbackHTTPServer.start { request in
            switch (request.method, request.path) {
            case ("POST", "/v1/signature-requests"): .accepted(id: "sig-1")
            case ("GET", "/v1/signature-requests/sig-1"): LoopbackHTTPServer.Response(body: #"{"status": "signed"}"#)
            case ("POST", "/v1/rooms"): .accepted(id: "room 1/a")
            default: .accepted(id: "ok")
            }
        }
        defer { Task { await server.shutdown() } }
        var channels: [OutboundChannel: ChannelConfiguration] = [:]
        for channel in [OutboundChannel.crm, .esignature, .documents, .notifications] {
            channels[channel] = ChannelConfiguration(
                mode: live ? .live : .shadow, baseURL: server.url.appendingPathComponent("v1"),
                credentialVariable: "KEEL_TEST_EMAIL_KEY")
        }
        try await backend(.sqlite, configuration: OutboundConfiguration(channels: channels)) { env, ledger in
            let handle = try await env.client.start(ProviderTour.self, id: "tour", input: "deal-9")
            let done = try await env.result(of: handle, as: ProviderTour.self)
            let outbox = try await ledger.outbox(runID: handle.runID)
            #expect(outbox.count == 9)
            #expect(Set(outbox.map(\.operation)) == [
                "crm.upsert-contact", "crm.set-deal-stage", "crm.add-note", "esignature.create-request", "esignature.void",
                "documents.create-room", "documents.upload", "documents.archive-room", "notifications.notify",
            ])
            if live {
                #expect(done == [
                    "performed:ok", "performed:ok", "performed:ok", "performed:sig-1", "signed", "performed:ok",
                    "performed:room 1/a", "performed:ok", "performed:ok", "performed:ok",
                ])
                #expect(server.requests.map { "\($0.method) \($0.path)" } == [
                    "POST /v1/contacts", "POST /v1/deals/deal-9/stage", "POST /v1/deals/deal-9/notes",
                    "POST /v1/signature-requests", "GET /v1/signature-requests/sig-1", "POST /v1/signature-requests/sig-1/void",
                    "POST /v1/rooms", "POST /v1/rooms/room%201%2Fa/documents", "POST /v1/rooms/room%201%2Fa/archive",
                    "POST /v1/notifications",
                ])
                let writes = server.requests.filter { $0.method == "POST" }
                #expect(Set(writes.compactMap(\.idempotencyKey)) == Set(outbox.map(\.idempotencyKey)))
                #expect(outbox.allSatisfy { $0.status == "sent" && $0.mode == "live" })
            } else {
                #expect(done == Array(repeating: "shadowed:-", count: 4) + ["pending"] + Array(repeating: "shadowed:-", count: 5))
                #expect(server.connections == 0)
                #expect(outbox.allSatisfy { $0.status == "shadowed" })
            }
        }
    }

    /// ``withEnvironment(_:configuration:logger:_:)`` with ``ProviderTour`` registered too.
    private func backend(
        _ backend: StoreBackend, configuration: OutboundConfiguration,
        _ body: (TestWorkflowEnvironment, OutboundLedger) async throws -> Void
    ) async throws {
        try await backend.withStore { store in
            let gateway = try OutboundGateway(
                database: WorkflowDatabase(store: store), configuration: configuration,
                environment: ["KEEL_TEST_EMAIL_KEY": Self.secret])
            var registry = WorkflowRegistry()
            registry.register(ProviderTour.self)
            registry.registerOutboundActivities(gateway: gateway)
            let env = TestWorkflowEnvironment(registry: registry, store: store, startTime: Self.sydneyEvening)
            defer { env.shutdown() }
            try await body(env, gateway.ledger)
        }
    }
}

@Suite("Outbound configuration: one JSON file, errors naming the bad key")
struct OutboundConfigurationTests {
    private func error(_ json: String) -> String? {
        do {
            _ = try OutboundConfiguration.parse(Data(json.utf8))
            return nil
        } catch { return "\(error)" }
    }

    @Test("a full file reads back: modes, provider, credential variable, limits, zones, warm-up")
    func fullFile() throws {
        let configuration = try OutboundConfiguration.parse(
            Data(
                """
                {"emergencyStopRecheckSeconds": 5, "channels": {
                   "email": {"mode": "live", "baseURL": "https://mail.example.net/v1", "credentialVariable": "MAIL_KEY",
                             "timeoutSeconds": 2.5, "dailyLimit": 50, "timeZone": "Australia/Sydney",
                             "senders": {"new.example": {"dailyLimit": 200, "timeZone": "UTC",
                                          "warmup": {"start": "2027-01-04", "initialLimit": 10, "dailyIncrease": 10}}}},
                   "sms": {"dailyLimit": 100}}}
                """.utf8))
        let email = configuration.channel(.email)
        #expect(email.mode == .live && email.baseURL?.absoluteString == "https://mail.example.net/v1")
        #expect(email.credentialVariable == "MAIL_KEY" && email.timeout == .milliseconds(2500))
        #expect(configuration.emergencyStopRecheck == .seconds(5))
        #expect(email.dailyLimit(for: "acme.example", on: try #require(SenderDay("2027-01-04"))) == 50)
        #expect(email.dailyLimit(for: "new.example", on: try #require(SenderDay("2027-01-03"))) == 0)
        #expect(email.dailyLimit(for: "new.example", on: try #require(SenderDay("2027-01-04"))) == 10)
        #expect(email.dailyLimit(for: "new.example", on: try #require(SenderDay("2027-01-08"))) == 50)
        #expect(email.dailyLimit(for: "new.example", on: try #require(SenderDay("2027-03-01"))) == 200)
        #expect(email.zone(for: "new.example").secondsFromGMT() == 0)
        #expect(email.zone(for: "acme.example").identifier == "Australia/Sydney")
        #expect(configuration.channel(.sms).mode == .shadow && configuration.channel(.sms).dailyLimit == 100)
        #expect(configuration.channel(.whatsapp) == ChannelConfiguration())
        #expect(configuration.problems(in: [:]) == ["channels.email.credentialVariable: MAIL_KEY is not set in the environment"])
        #expect(configuration.problems(in: ["MAIL_KEY": "k"]).isEmpty)
    }

    @Test("a credential file is read (trailing newline dropped); an unreadable one is a problem, naming the key")
    func credentialFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cred-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("s3cret\n".utf8).write(to: URL(fileURLWithPath: path))
        let json = #"{"channels": {"crm": {"mode": "live", "baseURL": "https://crm.example", "credentialFile": "\#(path)"}}}"#
        let configuration = try OutboundConfiguration.parse(Data(json.utf8))
        #expect(configuration.channel(.crm).credential(in: [:]) == "s3cret")
        #expect(configuration.problems(in: [:]).isEmpty)
        try FileManager.default.removeItem(atPath: path)
        #expect(configuration.problems(in: [:]).first?.contains("channels.crm.credentialFile") == true)
        #expect(error(#"{"channels": {"crm": {"credentialVariable": "A", "credentialFile": "/x"}}}"#)?
            .contains("not both") == true)
    }

    @Test("each bad key is named", arguments: [
        (#"{"channels": {"fax": {}}}"#, "channels.fax: unknown channel"),
        (#"{"channels": {"email": {"mdoe": "live"}}}"#, "channels.email.mdoe: unknown key"),
        (#"{"channels": {"email": {"mode": "loud"}}}"#, "channels.email.mode: must be shadow or live"),
        (#"{"channels": {"email": {"mode": "live"}}}"#, "channels.email.baseURL: is required when the mode is live"),
        (#"{"channels": {"email": {"baseURL": "ftp://x"}}}"#, "channels.email.baseURL: must be an http or https URL"),
        (#"{"channels": {"email": {"baseURL": "https://u:p@x.example"}}}"#, "channels.email.baseURL: must not hold credentials"),
        (#"{"channels": {"email": {"credentialVariable": "sk-live 123"}}}"#, "channels.email.credentialVariable: must be"),
        (#"{"channels": {"email": {"dailyLimit": -1}}}"#, "channels.email.dailyLimit: must be a number from 0"),
        (#"{"channels": {"email": {"dailyLimit": 2.5}}}"#, "channels.email.dailyLimit: must be a whole number"),
        (#"{"channels": {"email": {"dailyLimit": true}}}"#, "channels.email.dailyLimit: must be a number"),
        (#"{"channels": {"email": {"dailyLimit": 1e308}}}"#, "channels.email.dailyLimit: must be a number"),
        (#"{"channels": {"sms": {"timeZone": "Mars/Olympus"}}}"#, "channels.sms.timeZone: unknown time zone"),
        (#"{"channels": {"sms": {"senders": {"+61400": {"warmup": {"initialLimit": 5}}}}}}"#,
         "channels.sms.senders.+61400.warmup.start: is required"),
        (#"{"channels": {"sms": {"senders": {"+61400": {"warmup": {"start": "monday"}}}}}}"#,
         "channels.sms.senders.+61400.warmup.start: must be a day as YYYY-MM-DD"),
        (#"{"emergencyStopRecheckSeconds": 0}"#, "emergencyStopRecheckSeconds: must be a number from 1"),
        (#"{"chanels": {}}"#, "chanels: unknown key"),
        (#"[1, 2]"#, "must be a JSON object"),
        (#"{"channels": "#, "not valid JSON"),
    ])
    func badKeys(json: String, expected: String) {
        let message = error(json)
        #expect(message?.contains(expected) == true, "\(message ?? "accepted")")
    }

    @Test("a sender's day and its next midnight follow the zone, across daylight saving")
    func senderDays() throws {
        let sydney = try #require(TimeZone(identifier: "Australia/Sydney"))
        let evening = try Date("2027-01-15T08:00:00Z", strategy: .iso8601)
        #expect(SenderDay(of: evening, in: sydney).description == "2027-01-15")
        #expect(SenderDay(of: evening.addingTimeInterval(5 * 3600), in: sydney).description == "2027-01-16")
        #expect(SenderDay(of: evening, in: sydney).nextStart(in: sydney) == (try Date("2027-01-15T13:00:00Z", strategy: .iso8601)))
        // Sydney leaves daylight saving on 2027-04-04: the 4th starts at +11, the 5th at +10.
        let april = try #require(SenderDay("2027-04-04"))
        #expect(april.nextStart(in: sydney) == (try Date("2027-04-04T14:00:00Z", strategy: .iso8601)))
        #expect(try #require(SenderDay("2027-04-03")).nextStart(in: sydney) == (try Date("2027-04-03T13:00:00Z", strategy: .iso8601)))
        #expect(SenderDay("2027-13-01") == nil && SenderDay("tomorrow") == nil)
    }
}
