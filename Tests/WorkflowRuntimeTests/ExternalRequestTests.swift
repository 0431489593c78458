import Foundation
import Testing
import WorkflowRuntime
import WorkflowTesting
import Logging

/// Signals `item` to `target` once per item, an hour of workflow time apart; returns each
/// outcome: the run reached, or the reason and message of an ``ExternalWorkflowError``.
struct ExternalSignaller: Workflow {
    static let name = "test.external-signaller"

    struct Input: Codable, Sendable {
        var target: String
        var items: [String]
    }

    func run(context: WorkflowContext, input: Input) async throws -> [String] {
        var outcomes: [String] = []
        for (index, item) in input.items.enumerated() {
            if index > 0 { try await context.sleep(for: .seconds(3600)) }
            do {
                outcomes.append(try await context.signalExternal(workflowID: input.target, signal: "item", payload: item))
            } catch let error as ExternalWorkflowError {
                outcomes.append("\(error.reason.rawValue): \(error.message)")
            }
        }
        return outcomes
    }
}

/// Cancels `input` and returns the run it reached; an ``ExternalWorkflowError`` fails the run.
struct ExternalCanceller: Workflow {
    static let name = "test.external-canceller"

    func run(context: WorkflowContext, input: String) async throws -> String {
        try await context.cancelExternal(workflowID: input, reason: "superseded by the canceller")
    }
}

@Suite("Signals and cancellation from workflow code to another workflow")
struct ExternalRequestTests {
    static func registry() -> WorkflowRegistry {
        var registry = testRegistry()
        registry.register(ExternalSignaller.self)
        registry.register(ExternalCanceller.self)
        return registry
    }

    @Test("each signal reaches the target once, with the sender's request id, though the sender replays from history between them",
          arguments: StoreBackend.allCases)
    func signalsDeliveredOnce(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            let target = try await env.client.start(Collector.self, id: "target", input: 2)
            let sender = try await env.client.start(
                ExternalSignaller.self, id: "sender", input: .init(target: "target", items: ["a", "b"]))
            try await env.runUntilIdle()
            // A restart: the sender's code replays its first signal from history, and must not send it again.
            env.evictCachedRuns()
            try await env.advance(by: .seconds(3600))

            #expect(try await env.result(of: target, as: Collector.self) == ["a", "b"])
            #expect(try await env.result(of: sender, as: ExternalSignaller.self) == [target.runID, target.runID])
            let received = try await env.client.describe(workflowID: "target", includeHistory: true).history ?? []
            let signals = received.compactMap { event -> String? in
                guard case .signalReceived(let name, let payload, let requestID) = event.kind else { return nil }
                return "\(name) \(payload) \(requestID ?? "-")"
            }
            #expect(signals == ["item \"a\" \(sender.runID)/1", "item \"b\" \(sender.runID)/3"])
            let sent = try await env.client.describe(workflowID: "sender", includeHistory: true).history ?? []
            #expect(sent.filter { $0.kind.name == "externalSignalRequested" }.count == 2)
            #expect(sent.filter { $0.kind == .externalRequestDelivered(seq: 1, runID: target.runID) }.count == 1)
            #expect(sent.filter { $0.kind == .externalRequestDelivered(seq: 3, runID: target.runID) }.count == 1)
        }
    }

    @Test("an unknown, a closed and the sender's own workflow fail clearly; nothing is delivered",
          arguments: StoreBackend.allCases)
    func undeliverable(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            let closed = try await env.client.start(Collector.self, id: "closed", input: 0)
            _ = try await env.waitForClose(runID: closed.runID)
            var outcomes: [[String]] = []
            for target in ["nobody", "closed", "self"] {
                let sender = try await env.client.start(
                    ExternalSignaller.self, id: target == "self" ? "self" : "to-\(target)",
                    input: .init(target: target, items: ["x"]))
                outcomes.append(try await env.result(of: sender, as: ExternalSignaller.self))
            }
            #expect(outcomes == [
                ["notFound: cannot signal 'item': no workflow with id 'nobody'"],
                ["closed: cannot signal 'item': workflow 'closed' is closed (completed)"],
                ["ownWorkflow: cannot signal 'item': workflow 'self' is the sender's own (throw, or return, instead)"],
            ])
            #expect(try await env.client.describe(workflowID: "closed", includeHistory: true).history?
                .contains { $0.kind.name == "signalReceived" } == false)

            // Uncaught, the error fails the sender with its reason as the failure's type.
            let canceller = try await env.client.start(ExternalCanceller.self, id: "canceller", input: "nobody")
            let run = try await env.waitForClose(runID: canceller.runID)
            #expect(run.status == .failed)
            #expect(run.failure?.type == "ExternalWorkflow.notFound")
            #expect(run.failure?.nonRetryable == true)
        }
    }

    @Test("cancelExternal: the target's code sees the cancellation with the sender's reason", arguments: StoreBackend.allCases)
    func cancellation(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            let target = try await env.client.start(CleanupOnCancel.self, id: "target", input: Empty())
            try await env.runUntilIdle()
            let canceller = try await env.client.start(ExternalCanceller.self, id: "canceller", input: "target")
            #expect(try await env.result(of: canceller, as: ExternalCanceller.self) == target.runID)
            #expect(try await env.result(of: target, as: CleanupOnCancel.self) == "cleaned up after: superseded by the canceller")
        }
    }
}

/// Signals `ping` to its partner and waits for the partner's, `rounds` times: two of them signal
/// each other in the same instant, so their commits lock each other's runs at once.
struct PingPong: Workflow {
    static let name = "test.ping-pong"

    struct Input: Codable, Sendable {
        var partner: String
        var rounds: Int
    }

    func run(context: WorkflowContext, input: Input) async throws -> [Int] {
        // The test signals `go` once both sides exist.
        _ = try await context.waitForSignal("go", as: Empty.self)
        var received: [Int] = []
        for round in 0..<input.rounds {
            try await context.signalExternal(workflowID: input.partner, signal: "ping", payload: round)
            received.append(try await context.waitForSignal("ping", as: Int.self))
        }
        return received
    }
}

@Suite("Workflows that signal each other at once, on workers running in parallel")
struct ExternalRequestConcurrencyTests {
    @Test("pairs of runs signalling each other every round: every signal arrives once, in order, and no commit deadlocks",
          .timeLimit(.minutes(2)), arguments: StoreBackend.allCases)
    func pingPong(backend: StoreBackend) async throws {
        var registry = WorkflowRegistry()
        registry.register(PingPong.self)
        let pairs = 10
        let rounds = 5
        try await backend.withStore { store in
            // A deadlock between two commits would show as a failed commit (PostgreSQL aborts one).
            let warnings = LogCapture()
            var logger = warnings.logger
            logger.logLevel = .warning
            let workers = (0..<2).map { index in
                Worker(store: store, registry: registry,
                       configuration: WorkerConfiguration(identity: "ping-\(index)", pollInterval: .milliseconds(20)), logger: logger)
            }
            let client = WorkflowClient(store: store, registry: registry)
            try await workers[0].withRunning {
                try await workers[1].withRunning {
                    var handles: [WorkflowHandle] = []
                    for pair in 0..<pairs {
                        handles.append(try await client.start(PingPong.self, id: "ping-\(pair)-a", input: .init(partner: "ping-\(pair)-b", rounds: rounds)))
                        handles.append(try await client.start(PingPong.self, id: "ping-\(pair)-b", input: .init(partner: "ping-\(pair)-a", rounds: rounds)))
                    }
                    for handle in handles { try await client.signal(workflowID: handle.workflowID, name: "go") }
                    for handle in handles {
                        let run = try await client.waitForClose(runID: handle.runID, timeout: .seconds(90))
                        #expect(run.status == .completed, "\(handle.workflowID): \(run.status) \(run.failure?.description ?? "")")
                        #expect(try run.result?.decode(as: [Int].self) == Array(0..<rounds), "\(handle.workflowID)")
                    }
                    #expect(warnings.messages.isEmpty, "\(warnings.messages.prefix(3))")
                }
            }
        }
    }
}
