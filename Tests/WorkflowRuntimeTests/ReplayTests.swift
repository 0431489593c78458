import Activities
import Foundation
import KeelSQLite
import Testing
import WorkflowRuntime
import WorkflowTesting
import Workflows

/// The golden histories: one stored history per diagnostic workflow, replayed against the current code.
enum GoldenHistories {
    static let names = ["diagnostics.sequence", "diagnostics.wait-signal", "diagnostics.sleep", "diagnostics.three-steps",
                        "diagnostics.approval", "diagnostics.saga", "diagnostics.counter", "diagnostics.parent",
                        "diagnostics.send"]

    static var directory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("GoldenHistories")
    }

    static func load(_ name: String) throws -> [HistoryEvent] {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "GoldenHistories"),
                               "golden history \(name).json is missing")
        return try JSONDecoder().decode([HistoryEvent].self, from: Data(contentsOf: url))
    }

    /// An event as canonical JSON (whole: kind, sequence, names, payloads, times), with what
    /// differs between recordings — the run id inside idempotency keys, and approval ids made
    /// from it — replaced by placeholders.
    static func normalized(_ event: HistoryEvent) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var text = String(decoding: try encoder.encode(event), as: UTF8.self)
        for (pattern, placeholder) in [("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<run-id>"),
                                       ("apr-[0-9a-f]{16}", "<approval-id>")] {
            text = text.replacingOccurrences(of: pattern, with: placeholder, options: .regularExpression)
        }
        return text
    }

    /// The id of the run a golden history was recorded by, as its child ids and idempotency keys
    /// (`WORKFLOW-ID/RUN-ID/SEQ`) show it; replay derives default child ids from it.
    static func runID(of history: [HistoryEvent]) throws -> String {
        let text = String(decoding: try JSONEncoder().encode(history), as: UTF8.self)
        let pattern = #"\\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\/"#
        guard let range = text.range(of: pattern, options: .regularExpression) else { return "golden" }
        return String(text[range].dropFirst(2).dropLast(2))
    }

    /// The diagnostic workflows and activities; effects and the outbox (every channel shadow) in the file at `effectsPath`.
    static func diagnosticsRegistry(effectsPath: String) async throws -> WorkflowRegistry {
        var registry = WorkflowRegistry()
        registry.registerDiagnosticWorkflows()
        registry.registerDiagnosticActivities(effects: try SQLiteDiagnosticEffects(path: effectsPath))
        let outbox = try SQLWorkflowStore(sqlitePath: effectsPath)
        try await outbox.migrate()
        registry.registerOutboundActivities(
            gateway: try OutboundGateway(database: WorkflowDatabase(store: outbox), configuration: .shadow))
        return registry
    }

    /// Runs each diagnostic workflow once in the test environment and returns its history.
    static func record(_ name: String) async throws -> [HistoryEvent] {
        let effects = FileManager.default.temporaryDirectory.appendingPathComponent("effects-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: effects) }
        let env = try await TestWorkflowEnvironment(registry: try await diagnosticsRegistry(effectsPath: effects))
        defer { env.shutdown() }
        let handle: WorkflowHandle
        switch name {
        case "diagnostics.sequence":
            handle = try await env.client.start(DiagnosticSequence.self, id: "golden-sequence", input: .init(steps: 3))
        case "diagnostics.wait-signal":
            handle = try await env.client.start(DiagnosticWaitSignal.self, id: "golden-wait", input: .null)
            try await env.runUntilIdle()
            try await env.client.signal(workflowID: "golden-wait", name: "go", value: JSONValue.object(["deal": .string("acme")]))
        case "diagnostics.sleep":
            handle = try await env.client.start(DiagnosticSleep.self, id: "golden-sleep", input: .init(seconds: 60))
        case "diagnostics.approval":
            handle = try await env.client.start(DiagnosticApproval.self, id: "golden-approval", input: .init(
                summary: "Partner Acme", payload: .object(["terms": .string("net 30")]), deadlineSeconds: 86_400))
            try await env.runUntilIdle()
            let approval = try #require(try await env.client.approvals(ApprovalQuery(pendingOnly: true)).first)
            try await env.client.reject(approval.id, by: "ada", reason: "terms too loose")
        case "diagnostics.saga":
            handle = try await env.client.start(DiagnosticSaga.self, id: "golden-saga", input: .init(steps: 2))
        case "diagnostics.counter":
            // The first run of the chain: two adds (one carried over), then it continues as new.
            handle = try await env.client.start(DiagnosticCounter.self, id: "golden-counter", input: .init(continueEvery: 2))
            try await env.runUntilIdle()
            try await env.client.signal(workflowID: "golden-counter", name: "add", value: 5)
            try await env.runUntilIdle()
            for amount in [7, 9] { try await env.client.signal(workflowID: "golden-counter", name: "add", value: amount) }
            try await env.client.signal(workflowID: "golden-counter", name: "stop")
        case "diagnostics.parent":
            handle = try await env.client.start(DiagnosticParent.self, id: "golden-parent", input: .init(children: 2))
        case "diagnostics.send":
            let messages = ["bob@x.example", "cy@y.example"].map {
                OutboundMessage(channel: .email, from: "ann@acme.example", to: $0, subject: "Hello", body: "Hi")
            }
            handle = try await env.client.start(DiagnosticSend.self, id: "golden-send", input: .init(messages: messages))
        default:
            handle = try await env.client.start(DiagnosticThreeSteps.self, id: "golden-three", input: "hello")
        }
        let run = try await env.waitForClose(runID: handle.runID)
        let expected: RunStatus = switch name {
        case "diagnostics.approval", "diagnostics.saga": .compensated
        case "diagnostics.counter": .continuedAsNew
        default: .completed
        }
        #expect(run.status == expected)
        return try await env.store.history(runID: handle.runID)
    }
}

/// `diagnostics.sequence` as a careless deploy might change it: an extra activity before the steps.
struct ChangedSequence: Workflow {
    static let name = DiagnosticSequence.name

    func run(context: WorkflowContext, input: DiagnosticSequence.Input) async throws -> DiagnosticSequence.Output {
        _ = try await context.execute(Echo.self, "audit")
        for index in 0..<input.steps {
            _ = try await context.execute(RecordDiagnosticEffect.self, .init(step: index + 1))
        }
        return DiagnosticSequence.Output(steps: input.steps, attempts: [])
    }
}

/// Sleeps, calls Uppercase, then waits for `done` — or, changed, sleeps a second time before the call.
struct SleepThenCall: Workflow {
    static let name = "test.sleep-then-call"
    func run(context: WorkflowContext, input: Empty) async throws -> String {
        try await context.sleep(for: .seconds(3600))
        let text = try await context.execute(Uppercase.self, "a")
        return text + (try await context.waitForSignal("done", as: String.self))
    }
}

struct SleepThenCallChanged: Workflow {
    static let name = SleepThenCall.name
    func run(context: WorkflowContext, input: Empty) async throws -> String {
        try await context.sleep(for: .seconds(3600))
        try await context.sleep(for: .seconds(60))
        let text = try await context.execute(Uppercase.self, "a")
        return text + (try await context.waitForSignal("done", as: String.self))
    }
}

@Suite("Replay: golden histories and non-determinism")
struct ReplayTests {
    @Test("every golden history replays against the current code", arguments: GoldenHistories.names)
    func goldenHistoryReplays(name: String) throws {
        let history = try GoldenHistories.load(name)
        #expect(history.count > 2)
        var registry = WorkflowRegistry()
        registry.registerDiagnosticWorkflows()
        try WorkflowReplayer(registry: registry).replay(history, runID: try GoldenHistories.runID(of: history))
    }

    @Test("the current code records the same event sequence as the golden history", arguments: GoldenHistories.names)
    func goldenHistoryShapeIsCurrent(name: String) async throws {
        let recorded = try await GoldenHistories.record(name)
        if ProcessInfo.processInfo.environment["KEEL_RECORD_GOLDEN"] == "1" {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(recorded).write(to: GoldenHistories.directory.appendingPathComponent("\(name).json"))
        }
        let golden = try GoldenHistories.load(name)
        #expect(recorded.count == golden.count, "\(recorded.map(\.kind.name)) vs \(golden.map(\.kind.name))")
        for (index, (event, expected)) in zip(recorded, golden).enumerated() {
            #expect(try GoldenHistories.normalized(event) == GoldenHistories.normalized(expected), "event \(index + 1) of \(name)")
        }
    }

    @Test("a deliberately changed workflow is reported as non-deterministic, naming both operations")
    func changedWorkflowDetected() throws {
        let history = try GoldenHistories.load("diagnostics.sequence")
        var registry = WorkflowRegistry()
        registry.register(ChangedSequence.self)
        let error = try #require(throws: KeelError.self) { try WorkflowReplayer(registry: registry).replay(history) }
        #expect(error.code == .nonDeterminism)
        #expect(error.message.contains("#1 activity 'diagnostics.echo'"))
        #expect(error.message.contains("#1 activity 'diagnostics.record-effect'"))
    }

    @Test("a running run whose code changed is parked as blocked with the mismatch, and nothing is written")
    func changedCodeBlocksRun() async throws {
        var original = testRegistry()
        original.register(SleepThenCall.self)
        let env = try await TestWorkflowEnvironment(registry: original)
        defer { env.shutdown() }
        let handle = try await env.client.start(SleepThenCall.self, id: "deploy", input: Empty())
        try await env.advance(by: .seconds(3600))
        let historyBefore = try await env.store.history(runID: handle.runID)
        #expect(historyBefore.map(\.kind.name).suffix(2) == ["activityScheduled", "activityCompleted"])

        // A new deploy (a fresh worker with no cached runs) with changed code.
        var changed = testRegistry()
        changed.register(SleepThenCallChanged.self)
        let redeployed = try await TestWorkflowEnvironment(registry: changed, databasePath: env.databasePath)
        try await redeployed.client.signal(workflowID: "deploy", name: "done", value: "!")
        try await redeployed.runUntilIdle()

        let run = try #require(try await env.store.run(runID: handle.runID))
        #expect(run.status == .blocked)
        let reason = try #require(run.statusReason)
        #expect(reason.contains("non-deterministic"))
        #expect(reason.contains("#2 timer"))
        #expect(reason.contains("#2 activity 'test.uppercase'"))
        #expect(try await env.store.history(runID: handle.runID) == historyBefore)
        // The signal is kept for when the code is fixed.
        #expect(try await env.store.pendingWork(runID: handle.runID).inbox.count == 1)

        // Fixing the code (the original again) and restarting unblocks the run, which then finishes.
        let fixed = try await TestWorkflowEnvironment(registry: original, databasePath: env.databasePath)
        #expect(try await fixed.store.unblockRuns(now: fixed.clock.now()) == 1)
        #expect(try await fixed.waitForClose(runID: handle.runID).result == Payload(json: "\"A!\""))
    }
}
