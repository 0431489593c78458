import Activities
import Foundation
import Testing
import WorkflowRuntime
import WorkflowTesting
import Workflows

@Suite("Outreach cadence: days, conditions, exits, pause, co-pilot batches, outbound safety, cadences as data")
struct OutreachCadenceTests {
    static let lead = OutreachCadence.Lead(
        firstName: "Sam", email: "sam@prospect.example", company: "Prospect", linkedInURL: "https://linkedin.example/in/sam")

    static func input(_ lead: OutreachCadence.Lead = lead, mode: OutreachCadence.Mode = .autopilot) -> OutreachCadence.Input {
        OutreachCadence.Input(lead: lead, sender: "ann@keel.example", linkedInSeat: "seat-ann", mode: mode)
    }

    func withEnvironment(
        _ configuration: OutboundConfiguration = .shadow,
        _ body: (TestWorkflowEnvironment, OutboundLedger, CadenceLibrary) async throws -> Void
    ) async throws {
        try await StoreBackend.sqlite.withStore { store in
            let database = WorkflowDatabase(store: store)
            let gateway = try OutboundGateway(database: database, configuration: configuration)
            var registry = WorkflowRegistry()
            registry.registerOutboundActivities(gateway: gateway)
            try registry.registerBusinessWorkflows(database: database, gateway: gateway)
            let env = TestWorkflowEnvironment(registry: registry, store: store)
            defer { env.shutdown() }
            try await body(env, gateway.ledger, try CadenceLibrary(database: database))
        }
    }

    /// The day (1-based, from the run's start) each outbox row of the run was first written on.
    func sendDays(_ env: TestWorkflowEnvironment, _ ledger: OutboundLedger, _ handle: WorkflowHandle) async throws
        -> [String]
    {
        let start = try await env.client.describe(workflowID: handle.workflowID).run.createdAt
        return try await ledger.outbox(runID: handle.runID, limit: 1000).sorted { $0.createdAt < $1.createdAt }.map {
            "\(Int($0.createdAt.timeIntervalSince(start) / 86_400) + 1) \($0.channel)"
        }
    }

    @Test("autopilot, 21 days: each step on its day, LinkedIn message once connected, closed on day 21")
    func fullCadence() async throws {
        try await withEnvironment { env, ledger, _ in
            let handle = try await env.client.start(OutreachCadence.self, id: "lead-1", input: Self.input())
            try await env.runUntilIdle()
            try await env.advance(by: .seconds(86_400))  // day 2
            try await env.client.signal(workflowID: "lead-1", name: "linkedin-connected", value: Empty())
            let output = try await env.result(of: handle, as: OutreachCadence.self)
            #expect(output.ending == "closed" && output.cadenceID == "outreach-21" && output.cadenceVersion == 1)
            #expect(output.steps.count == 7 && output.steps.allSatisfy { $0.hasSuffix("shadowed") })
            #expect(try await sendDays(env, ledger, handle) == [
                "1 email", "2 linkedin", "5 email", "7 linkedin", "10 email", "14 linkedin", "17 email",
            ])
            let run = try await env.client.describe(workflowID: "lead-1").run
            #expect(run.stage == "closed")
            #expect(try #require(run.closedAt).timeIntervalSince(run.createdAt) == 20 * 86_400)
            let first = try #require(try await ledger.outbox(runID: handle.runID, limit: 100).last)
            #expect(first.message.contains("Hi Sam") && first.message.contains("Prospect and Keel"))
        }
    }

    @Test("no LinkedIn profile URL: every LinkedIn step is skipped; not connected: the day-7 message is skipped")
    func conditions() async throws {
        try await withEnvironment { env, ledger, _ in
            var lead = Self.lead
            lead.linkedInURL = nil
            let handle = try await env.client.start(OutreachCadence.self, id: "lead-2", input: Self.input(lead))
            let output = try await env.result(of: handle, as: OutreachCadence.self)
            #expect(output.steps.filter { $0.contains("skipped (no LinkedIn profile URL)") }.count == 3)
            #expect(try await sendDays(env, ledger, handle) == ["1 email", "5 email", "10 email", "17 email"])
            let connectedless = try await env.client.start(OutreachCadence.self, id: "lead-2b", input: Self.input())
            let second = try await env.result(of: connectedless, as: OutreachCadence.self)
            #expect(second.steps.contains("day 7 message: skipped (not connected on LinkedIn)"))
        }
    }

    @Test("a reply, an unsubscribe or a bounce ends the cadence at once; an unsubscribe or bounce suppresses the address",
          arguments: ["reply", "unsubscribe", "bounce"])
    func exits(signal: String) async throws {
        try await withEnvironment { env, ledger, _ in
            let handle = try await env.client.start(OutreachCadence.self, id: "lead-\(signal)", input: Self.input())
            try await env.runUntilIdle()
            try await env.advance(by: .seconds(3 * 86_400))
            let before = env.clock.now()
            try await env.client.signal(workflowID: "lead-\(signal)", name: signal, value: Empty())
            try await env.runUntilIdle()
            let run = try await env.client.describe(workflowID: "lead-\(signal)").run
            #expect(run.status == .completed && run.closedAt == before, "it ended at once")
            let output = try await env.result(of: handle, as: OutreachCadence.self)
            #expect(output.ending == signal && run.stage == "exited-\(signal)")
            #expect(output.steps.count == 2)  // day 1 e-mail, day 2 LinkedIn
            let suppression = try await ledger.suppression(of: Self.lead.email)
            #expect((suppression?.source.rawValue) == (signal == "reply" ? nil : signal))
        }
    }

    @Test("pause and resume: the days after a pause move by its length")
    func pauseAndResume() async throws {
        try await withEnvironment { env, ledger, _ in
            let handle = try await env.client.start(OutreachCadence.self, id: "lead-p", input: Self.input())
            try await env.runUntilIdle()
            try await env.advance(by: .seconds(86_400))  // day 2
            try await env.advance(by: .seconds(86_400))  // day 3
            try await env.client.signal(workflowID: "lead-p", name: "pause", value: Empty())
            try await env.runUntilIdle()
            #expect(try await env.client.describe(workflowID: "lead-p").run.stage == "paused")
            try await env.advance(by: .seconds(10 * 86_400))
            #expect(try await ledger.outbox(runID: handle.runID).count == 2)  // nothing while paused
            try await env.client.signal(workflowID: "lead-p", name: "resume", value: Empty())
            _ = try await env.result(of: handle, as: OutreachCadence.self)
            let days = try await sendDays(env, ledger, handle)
            #expect(days.prefix(3) == ["1 email", "2 linkedin", "15 email"])
        }
    }

    @Test("co-pilot: a day's drafts go to one batch approval; the approved frozen scope is sent once, a re-run sends nothing again; an expired batch skips its day")
    func copilot() async throws {
        try await withEnvironment { env, ledger, _ in
            var lead = Self.lead
            lead.linkedInURL = nil
            var input = Self.input(lead, mode: .copilot)
            input.reviewers = ["role:sdr-lead"]
            let handle = try await env.client.start(OutreachCadence.self, id: "lead-c", input: input)
            try await env.runUntilIdle()
            let batch = try #require(try await env.client.approvals(ApprovalQuery(pendingOnly: true)).first)
            #expect(batch.request.name == "drafts-day-1" && batch.request.approvers == ["role:sdr-lead"])
            let drafts = try batch.request.payload.decode(as: OutreachCadence.DraftBatch.self)
            #expect(drafts.drafts.count == 1 && drafts.previewHash.count == 64)
            try await env.client.approve(batch.id, by: "rita", role: "sdr-lead")
            try await env.advance(by: .seconds(1))  // the signals that came during the approval are read first
            #expect(try await ledger.outbox(runID: handle.runID).count == 1)
            // Day 5's batch expires: the day is skipped. Then the reply ends it.
            try await env.advance(by: .seconds(4 * 86_400))
            try await env.advance(by: .seconds(86_400 + 1))
            try await env.advance(by: .seconds(1))
            try await env.client.signal(workflowID: "lead-c", name: "reply", value: Empty())
            let output = try await env.result(of: handle, as: OutreachCadence.self)
            #expect(output.steps.contains { $0.hasPrefix("day 5") && $0.contains("skipped (drafts expired)") })

            // A re-run of the same workflow id approving the same day-1 batch sends nothing new.
            let rerun = try await env.client.start(OutreachCadence.self, id: "lead-c", input: input)
            try await env.runUntilIdle()
            let again = try #require(try await env.client.approvals(ApprovalQuery(pendingOnly: true, runID: rerun.runID)).first)
            #expect(try again.request.payload.decode(as: OutreachCadence.DraftBatch.self).previewHash == drafts.previewHash)
            try await env.client.approve(again.id, by: "rita", role: "sdr-lead")
            try await env.advance(by: .seconds(1))
            #expect(try await ledger.outbox(runID: rerun.runID).isEmpty)
            #expect(try await ledger.outbox(limit: 100).filter { $0.recipient == lead.email }.count == 1)
        }
    }

    @Test("every send passes the outbound checks: the emergency stop holds the day's e-mail until switched off")
    func emergencyStop() async throws {
        try await withEnvironment(OutboundConfiguration(emergencyStopRecheck: .seconds(300))) { env, ledger, _ in
            try await ledger.setEmergencyStop(true, reason: "template review", by: "ops")
            let handle = try await env.client.start(OutreachCadence.self, id: "lead-e", input: Self.input())
            try await env.runUntilIdle()
            try await env.advance(by: .seconds(600))
            #expect(try await ledger.outbox(runID: handle.runID).first?.status == "held")
            try await ledger.setEmergencyStop(false, reason: nil, by: "ops")
            try await env.advance(by: .seconds(301))
            #expect(try await ledger.outbox(runID: handle.runID).first?.status == "shadowed")
        }
    }

    @Test("two cadences over one sending domain's daily limit of 1: the second lead's day-1 e-mail waits for the next day")
    func dailyLimit() async throws {
        let limited = OutboundConfiguration(channels: [.email: ChannelConfiguration(dailyLimit: 1)])
        try await withEnvironment(limited) { env, ledger, _ in
            var second = Self.lead
            second.email = "kim@other.example"
            second.linkedInURL = nil
            var lead = Self.lead
            lead.linkedInURL = nil
            let first = try await env.client.start(OutreachCadence.self, id: "lead-l1", input: Self.input(lead))
            try await env.runUntilIdle()
            let other = try await env.client.start(OutreachCadence.self, id: "lead-l2", input: Self.input(second))
            try await env.runUntilIdle()
            #expect(try await ledger.outbox(runID: other.runID).first?.status == "deferred")
            try await env.client.signal(workflowID: "lead-l1", name: "reply", value: Empty())
            try await env.client.signal(workflowID: "lead-l2", name: "reply", value: Empty())
            _ = try await env.result(of: first, as: OutreachCadence.self)
            let output = try await env.result(of: other, as: OutreachCadence.self)
            #expect(output.steps == ["day 1 day1-1-intro: shadowed"])
            #expect(try await ledger.sendCounts().map { "\($0.day) \($0.sent)" }.sorted() == [
                "2027-01-15 1", "2027-01-16 1",
            ])
        }
    }

    @Test("cadences as data: a new version is used by new runs only; a changed version must be a new number")
    func versions() async throws {
        try await withEnvironment { env, _, library in
            let v1 = CadenceDocument(
                id: "short", version: 1, steps: [
                    CadenceStep(day: 1, channel: .email, template: "a", subject: "One", body: "Hi {{firstName}}"),
                    CadenceStep(day: 3, channel: .email, template: "b", subject: "Two", body: "Again"),
                ], closeOnDay: 4)
            #expect(try await library.register(v1))
            #expect(try await library.register(v1) == false)  // the same again: nothing changes
            var input = Self.input()
            input.cadenceID = "short"
            let old = try await env.client.start(OutreachCadence.self, id: "lead-v1", input: input)
            try await env.runUntilIdle()

            var v2 = v1
            v2.version = 2
            v2.steps.removeLast()
            try await library.register(v2)
            var changed = v1
            changed.closeOnDay = 5
            await #expect(throws: KeelError.self) { try await library.register(changed) }

            let kept = try await env.result(of: old, as: OutreachCadence.self)
            #expect(kept.cadenceVersion == 1 && kept.steps.count == 2)
            let new = try await env.client.start(OutreachCadence.self, id: "lead-v2", input: input)
            let taken = try await env.result(of: new, as: OutreachCadence.self)
            #expect(taken.cadenceVersion == 2 && taken.steps.count == 1)
            #expect(try await library.documents().map { "\($0.id)@\($0.version)" } == ["outreach-21@1", "short@1", "short@2"])
        }
    }

    @Test("a cadence document with a bad step is refused, naming the step", arguments: [
        (#"{"id": "x", "version": 1, "closeOnDay": 5, "steps": [{"day": 1, "channel": "email", "template": "a", "body": "b"}]}"#,
         "steps[0].subject: is required"),
        (#"{"id": "x", "version": 1, "closeOnDay": 5, "steps": [{"day": 3, "channel": "email", "template": "a", "subject": "s", "body": "b"}, {"day": 2, "channel": "linkedin", "template": "c", "body": "d"}]}"#,
         "steps[1].day: is 2, before"),
        (#"{"id": "x", "version": 1, "closeOnDay": 5, "steps": [{"day": 1, "channel": "fax", "template": "a", "body": "b"}]}"#,
         "steps[0].channel"),
        (#"{"id": "x", "version": 1, "closeOnDay": 5, "steps": [{"day": 1, "channel": "crm", "template": "a", "body": "b"}]}"#,
         "steps[0].channel: must be email, sms, whatsapp or linkedin"),
        (#"{"id": "x", "version": 1, "closeOnDay": 5, "steps": [{"day": 1, "channel": "sms", "template": "a", "body": "b", "conditions": ["isRich"]}]}"#,
         "steps[0].conditions[0]"),
        (#"{"id": "x", "version": 1, "closeOnDay": 5, "steps": [{"channel": "sms", "template": "a", "body": "b"}]}"#,
         "steps[0].day: is required"),
        (#"{"id": "x", "version": 1, "closeOnDay": 1, "steps": [{"day": 2, "channel": "sms", "template": "a", "body": "b"}]}"#,
         "closeOnDay: must be from the last step's day"),
        (#"{"id": "x y", "version": 1, "closeOnDay": 5, "steps": []}"#, "id: must be letters"),
    ])
    func badDocuments(json: String, expected: String) {
        do {
            _ = try CadenceDocument.parse(Data(json.utf8))
            Issue.record("accepted: \(json)")
        } catch {
            #expect("\(error)".contains(expected), "\(error)")
        }
    }

    @Test("the built-in 21-day cadence is valid and is what a run without a cadence id follows")
    func builtIn() throws {
        try CadenceDocument.outreach21.validate()
        #expect(CadenceDocument.outreach21.steps.map(\.day) == [1, 2, 5, 7, 10, 14, 17])
        #expect(CadenceDocument.outreach21.closeOnDay == 21)
    }
}
