import Foundation
import Testing
import WorkflowRuntime
import WorkflowTesting

@Suite("Approvals: decisions bound to the request, audited, buffered, expiring")
struct ApprovalTests {
    /// Runs `body` in a time-skipping environment on a fresh store of `backend`.
    private func withEnvironment(_ backend: StoreBackend, _ body: (TestWorkflowEnvironment, SagaLedger) async throws -> Void) async throws {
        let ledger = SagaLedger()
        try await backend.withStore { store in
            let env = TestWorkflowEnvironment(registry: sagaRegistry(ledger), store: store)
            defer { env.shutdown() }
            try await body(env, ledger)
        }
    }

    /// The run's only pending approval.
    private func pendingApproval(_ env: TestWorkflowEnvironment, of handle: WorkflowHandle) async throws -> ApprovalRecord {
        try await env.runUntilIdle()
        let pending = try await env.client.approvals(ApprovalQuery(pendingOnly: true, runID: handle.runID))
        try #require(pending.count == 1, "expected one pending approval, found \(pending.count)")
        return pending[0]
    }

    @Test("approve: the workflow gets who approved and their note; the request and decision are audited", arguments: StoreBackend.allCases)
    func approve(backend: StoreBackend) async throws {
        try await withEnvironment(backend) { env, _ in
            let handle = try await env.client.start(EscalatingApproval.self, id: "deal-1", input: .init(approvers: ["ada", "role:legal"]))
            let approval = try await pendingApproval(env, of: handle)
            #expect(approval.request.name == "manager")
            #expect(approval.request.summary == "Discount for Acme")
            #expect(approval.request.approvers == ["ada", "role:legal"])
            #expect(approval.request.payloadHash == ApprovalRequest.hash(of: approval.request.payload))
            #expect(approval.request.payloadHash.count == 64)
            #expect(approval.request.deadline == env.clock.now().addingTimeInterval(48 * 3600))

            let decided = try await env.client.approve(approval.id, by: "ada", note: "fine", origin: "test")
            #expect(decided.status == .approved)
            #expect(try await env.result(of: handle, as: EscalatingApproval.self) == "approved by ada: fine")

            let (record, audit) = try await env.client.approval(approval.id)
            #expect(record.status == .approved)
            #expect(record.decision?.decidedBy == "ada")
            #expect(audit.map(\.action) == [.requested, .approved])
            #expect(audit.last?.origin == "test")
            #expect(audit.last?.payloadHash == approval.request.payloadHash)
        }
    }

    @Test("reject: the workflow gets the rejection and its reason; a role-based approver may decide", arguments: StoreBackend.allCases)
    func reject(backend: StoreBackend) async throws {
        try await withEnvironment(backend) { env, _ in
            let handle = try await env.client.start(EscalatingApproval.self, id: "deal-2", input: .init(approvers: ["role:legal"]))
            let approval = try await pendingApproval(env, of: handle)
            try await env.client.reject(approval.id, by: "grace", role: "legal", reason: "terms too loose")
            #expect(try await env.result(of: handle, as: EscalatingApproval.self) == "rejected by grace: terms too loose")
            let (record, _) = try await env.client.approval(approval.id)
            #expect(record.decision?.role == "legal")
            #expect(record.status == .rejected)
        }
    }

    @Test("expiry escalates to another approver; the expired request can no longer be decided", arguments: StoreBackend.allCases)
    func expireThenEscalate(backend: StoreBackend) async throws {
        try await withEnvironment(backend) { env, _ in
            let handle = try await env.client.start(EscalatingApproval.self, id: "deal-3",
                                                    input: .init(approvers: ["bob"], escalateTo: ["carol"], timeoutHours: 24))
            let first = try await pendingApproval(env, of: handle)
            try await env.advance(by: .seconds(24 * 3600))
            let second = try await pendingApproval(env, of: handle)
            #expect(second.request.name == "director")
            #expect(second.request.approvers == ["carol"])
            #expect(second.id != first.id)

            let (expired, audit) = try await env.client.approval(first.id)
            #expect(expired.status == .expired)
            #expect(audit.map(\.action) == [.requested, .expired])
            await #expect(throws: KeelError.self) { try await env.client.approve(first.id, by: "bob") }

            try await env.client.approve(second.id, by: "carol")
            #expect(try await env.result(of: handle, as: EscalatingApproval.self) == "approved by carol")
        }
    }

    @Test("a decision made before the workflow waits for it is kept", arguments: StoreBackend.allCases)
    func decisionBeforeTheWait(backend: StoreBackend) async throws {
        try await withEnvironment(backend) { env, _ in
            let handle = try await env.client.start(ApprovalThenWork.self, id: "contract", input: "MSA v3")
            let approval = try await pendingApproval(env, of: handle)
            // The workflow is sleeping for an hour, not yet waiting for the decision.
            try await env.client.approve(approval.id, by: "lee")
            try await env.runUntilIdle()
            #expect(try await env.store.run(runID: handle.runID)?.status == .running)
            #expect(try await env.result(of: handle, as: ApprovalThenWork.self) == "approved by lee")
        }
    }

    @Test("refused decisions change nothing but the audit trail: stale id, wrong hash, unauthorized, double decision",
          arguments: StoreBackend.allCases)
    func refusals(backend: StoreBackend) async throws {
        try await withEnvironment(backend) { env, _ in
            let handle = try await env.client.start(EscalatingApproval.self, id: "deal-4", input: .init(approvers: ["ada"]))
            let approval = try await pendingApproval(env, of: handle)
            let historyBefore = try await env.store.history(runID: handle.runID)

            func expectRefusal(_ fragment: String, _ attempt: () async throws -> Void) async {
                do {
                    try await attempt()
                    Issue.record("expected a refusal mentioning '\(fragment)'")
                } catch let error as KeelError {
                    #expect(error.code == .approvalRefused, "\(error)")
                    #expect(error.message.contains(fragment), "\(error.message)")
                } catch {
                    Issue.record("unexpected error \(error)")
                }
            }
            await expectRefusal("may not decide") { try await env.client.approve(approval.id, by: "mallory") }
            await expectRefusal("may not decide") { try await env.client.approve(approval.id, by: "mallory", role: "legal") }
            await expectRefusal("not abcdef") { try await env.client.approve(approval.id, by: "ada", payloadHashPrefix: "abcdef") }
            await #expect(throws: KeelError(.approvalNotFound, "no approval with id 'apr-0000000000000000' (see `worker approvals`)")) {
                try await env.client.approve("apr-0000000000000000", by: "ada")
            }
            await #expect(throws: KeelError.self) { try await env.client.approve(approval.id, by: "ada", payloadHashPrefix: "xyz") }
            await #expect(throws: KeelError.self) { try await env.client.reject(approval.id, by: "ada", reason: " ") }

            // Nothing reached the run.
            #expect(try await env.store.history(runID: handle.runID) == historyBefore)
            #expect(try await env.store.pendingWork(runID: handle.runID).inbox.isEmpty)
            #expect(try await env.store.approval(id: approval.id)?.status == .pending)

            let prefix = String(approval.request.payloadHash.prefix(10)).uppercased()
            try await env.client.approve(approval.id, by: "ada", payloadHashPrefix: prefix)
            await expectRefusal("already approved by ada") { try await env.client.reject(approval.id, by: "ada", reason: "changed my mind") }
            #expect(try await env.result(of: handle, as: EscalatingApproval.self) == "approved by ada")
            await expectRefusal("already approved") { try await env.client.approve(approval.id, by: "ada") }

            let audit = try await env.client.approval(approval.id).audit
            #expect(audit.map(\.action) == [.requested, .refused, .refused, .refused, .approved, .refused, .refused])
            #expect(audit[1].actor == "mallory")
            #expect(audit[3].payloadHash == "abcdef")
            #expect(audit.filter { $0.action == .refused }.allSatisfy { $0.detail != nil })
        }
    }

    @Test("a run that closes withdraws its pending approvals, which then refuse decisions")
    func withdrawnOnClose() async throws {
        try await withEnvironment(.sqlite) { env, _ in
            let handle = try await env.client.start(EscalatingApproval.self, id: "deal-5", input: .init(approvers: []))
            let approval = try await pendingApproval(env, of: handle)
            try await env.client.cancel(workflowID: "deal-5", reason: "deal lost")
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .cancelled)
            #expect(try await env.store.approval(id: approval.id)?.status == .withdrawn)
            await #expect(throws: KeelError.self) { try await env.client.approve(approval.id, by: "anyone") }
        }
    }

    @Test("approval workflows replay deterministically from their stored history")
    func replay() async throws {
        try await withEnvironment(.sqlite) { env, ledger in
            let handle = try await env.client.start(EscalatingApproval.self, id: "deal-6",
                                                    input: .init(approvers: ["bob"], escalateTo: ["carol"], timeoutHours: 1))
            _ = try await pendingApproval(env, of: handle)
            try await env.advance(by: .seconds(3600))
            try await env.client.approve(try await pendingApproval(env, of: handle).id, by: "carol")
            _ = try await env.waitForClose(runID: handle.runID)
            let history = try await env.store.history(runID: handle.runID)
            try WorkflowReplayer(registry: sagaRegistry(ledger)).replay(history, runID: handle.runID)
        }
    }
}
