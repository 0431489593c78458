import Activities
import Crypto
import Foundation
import Synchronization
import KeelTestSupport
import Testing
import WorkflowRuntime
import WorkflowTesting
import Workflows

@Suite("Signature / term sheet: approval bound to the exact terms, webhook or poll, expiry, renegotiation, evidence")
struct TermSheetSignatureTests {
    static let terms = "Term sheet: revenue share 20%, net 30, APAC."

    static func input(_ terms: String = terms) -> TermSheetSignature.Input {
        TermSheetSignature.Input(
            dealID: "deal-7", company: "Acme", title: "Partner term sheet", terms: terms,
            signers: [.init(name: "Pat", email: "pat@acme.example")], parties: ["ada@keel.example", "role:legal"])
    }

    static func sha256(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    func withEnvironment(
        _ configuration: OutboundConfiguration = .shadow,
        _ body: (TestWorkflowEnvironment, OutboundLedger) async throws -> Void
    ) async throws {
        try await StoreBackend.sqlite.withStore { store in
            let database = WorkflowDatabase(store: store)
            let gateway = try OutboundGateway(database: database, configuration: configuration, environment: ["K": "k"])
            var registry = WorkflowRegistry()
            registry.registerOutboundActivities(gateway: gateway)
            try registry.registerBusinessWorkflows(database: database, gateway: gateway)
            let env = TestWorkflowEnvironment(registry: registry, store: store)
            defer { env.shutdown() }
            try await body(env, gateway.ledger)
        }
    }

    /// Approves the run's pending terms approval, checking it binds to `terms`' SHA-256.
    func approveTerms(_ env: TestWorkflowEnvironment, _ handle: WorkflowHandle, _ terms: String) async throws {
        try await env.runUntilIdle()
        let pending = try await env.client.approvals(ApprovalQuery(pendingOnly: true, runID: handle.runID))
        let approval = try #require(pending.first)
        let shown = try approval.request.payload.decode(as: TermSheetSignature.TermsForApproval.self)
        #expect(shown.text == terms && shown.sha256 == Self.sha256(terms))
        try await env.client.approve(
            approval.id, by: "lee", role: "legal", payloadHashPrefix: String(approval.request.payloadHash.prefix(8)))
        try await env.runUntilIdle()
    }

    func operations(_ ledger: OutboundLedger, _ handle: WorkflowHandle) async throws -> Set<String> {
        Set(try await ledger.outbox(runID: handle.runID, limit: 1000).map(\.operation))
    }

    @Test("signed by webhook: recorded in the CRM, the parties told, the deal updated, the evidence pack filed last")
    func signedByWebhook() async throws {
        try await withEnvironment { env, ledger in
            let handle = try await env.client.start(TermSheetSignature.self, id: "sign-1", input: Self.input())
            try await approveTerms(env, handle, Self.terms)
            #expect(try await env.client.describe(workflowID: "sign-1").run.stage == "awaiting-signature")
            let requestID = "shadow-\(handle.runID)-1"
            try await env.client.signal(
                workflowID: "sign-1", name: "signed", value: TermSheetSignature.Webhook(requestID: requestID, by: "Pat"))
            let output = try await env.result(of: handle, as: TermSheetSignature.self)
            #expect(output.round == 1 && output.confirmedBy == "webhook" && output.signedBy == "Pat")
            #expect(output.termsSHA256 == Self.sha256(Self.terms))
            #expect(try await operations(ledger, handle) == [
                "esignature.create-request", "crm.add-note", "notifications.notify", "crm.set-deal-stage",
                "documents.upload",
            ])
            // The filed pack verifies, and holds the approval of exactly these terms.
            let upload = try #require(try await ledger.outbox(runID: handle.runID).first { $0.operation == "documents.upload" })
            let filed = try JSONDecoder().decode(DocumentUpload.self, from: Data(upload.message.utf8))
            let pack = try EvidencePack.verify(Data(try #require(filed.content).utf8))
            #expect(pack.head == output.evidence.head && filed.contentSHA256 == output.evidence.sha256)
            #expect(pack.records.contains { $0.kind == "approval" && $0.summary.hasPrefix("terms-approval approved") })
            #expect(try await env.client.describe(workflowID: "sign-1").run.stage == "signed")
        }
    }

    @Test("no webhook: the request's status is polled until the provider reports it signed")
    func signedByPoll() async throws {
        let polls = PollCounter()
        let server = try await LoopbackHTTPServer.start { request in
            if request.method == "GET" {
                return LoopbackHTTPServer.Response(body: polls.next() < 2 ? #"{"status": "pending"}"# : #"{"status": "signed"}"#)
            }
            return request.path == "/v1/signature-requests" ? .accepted(id: "sr-1") : .accepted(id: "ok")
        }
        defer { Task { await server.shutdown() } }
        let live = OutboundConfiguration(channels: [
            .esignature: ChannelConfiguration(mode: .live, baseURL: server.url.appendingPathComponent("v1"), credentialVariable: "K")
        ])
        try await withEnvironment(live) { env, _ in
            var input = Self.input()
            input.pollIntervalSeconds = 3600
            let handle = try await env.client.start(TermSheetSignature.self, id: "sign-poll", input: input)
            try await approveTerms(env, handle, Self.terms)
            let output = try await env.result(of: handle, as: TermSheetSignature.self)
            #expect(output.confirmedBy == "poll" && output.requestID == "sr-1")
            #expect(server.requests.map { "\($0.method) \($0.path)" } == [
                "POST /v1/signature-requests", "GET /v1/signature-requests/sr-1", "GET /v1/signature-requests/sr-1",
                "GET /v1/signature-requests/sr-1",
            ])
            let created = try JSONDecoder.keel.decode(SignatureRequest.self, from: Data(server.requests[0].body.utf8))
            #expect(created.documentSHA256 == Self.sha256(Self.terms))
        }
    }

    @Test("declined: the request is voided and the parties told; a renegotiation starts a new round with a new approval; an earlier round's webhook is ignored")
    func declinedThenRenegotiated() async throws {
        try await withEnvironment { env, ledger in
            let handle = try await env.client.start(TermSheetSignature.self, id: "sign-2", input: Self.input())
            try await approveTerms(env, handle, Self.terms)
            let first = "shadow-\(handle.runID)-1"
            try await env.client.signal(
                workflowID: "sign-2", name: "declined",
                value: TermSheetSignature.Webhook(requestID: first, reason: "share too low"))
            try await env.runUntilIdle()
            #expect(try await env.client.describe(workflowID: "sign-2").run.stage == "renegotiation")
            #expect(try await operations(ledger, handle).contains("esignature.void"))

            let revised = "Term sheet: revenue share 25%, net 30, APAC."
            try await env.client.signal(workflowID: "sign-2", name: "renegotiate", value: revised)
            try await approveTerms(env, handle, revised)
            // A late webhook about round 1's request changes nothing.
            try await env.client.signal(
                workflowID: "sign-2", name: "signed", value: TermSheetSignature.Webhook(requestID: first, by: "Pat"))
            try await env.runUntilIdle()
            #expect(try await env.client.describe(workflowID: "sign-2").run.status == .running)
            try await env.client.signal(
                workflowID: "sign-2", name: "signed",
                value: TermSheetSignature.Webhook(requestID: "shadow-\(handle.runID)-2", by: "Pat"))
            let output = try await env.result(of: handle, as: TermSheetSignature.self)
            #expect(output.round == 2 && output.termsSHA256 == Self.sha256(revised))
        }
    }

    @Test("expired and not renegotiated: voided, the parties told, the run fails SignatureExpired")
    func expired() async throws {
        try await withEnvironment { env, ledger in
            let handle = try await env.client.start(TermSheetSignature.self, id: "sign-3", input: Self.input())
            try await approveTerms(env, handle, Self.terms)
            try await env.advance(by: .seconds(7 * 86_400 + 1))
            #expect(try await env.client.describe(workflowID: "sign-3").run.stage == "renegotiation")
            try await env.advance(by: .seconds(3 * 86_400 + 1))
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .failed && run.failure?.type == "SignatureExpired")
            #expect(run.stage == "expired")
            let calls = try await ledger.outbox(runID: handle.runID, limit: 1000).map(\.operation)
            #expect(calls.filter { $0 == "esignature.void" }.count == 1)
            #expect(calls.filter { $0 == "notifications.notify" }.count == 1)
        }
    }

    @Test("terms the approver rejects are never sent for signature")
    func rejectedTerms() async throws {
        try await withEnvironment { env, ledger in
            let handle = try await env.client.start(TermSheetSignature.self, id: "sign-4", input: Self.input())
            try await env.runUntilIdle()
            let approval = try #require(try await env.client.approvals(ApprovalQuery(pendingOnly: true)).first)
            try await env.client.reject(approval.id, by: "lee", role: "legal", reason: "clause 4")
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .failed && run.failure?.type == "ApprovalRejected")
            #expect(try await ledger.outbox(runID: handle.runID).isEmpty)
        }
    }
}

/// Counts the status polls the loopback server answered.
final class PollCounter: Sendable {
    private let count = Mutex(0)
    func next() -> Int { count.withLock { value in defer { value += 1 }; return value } }
}
