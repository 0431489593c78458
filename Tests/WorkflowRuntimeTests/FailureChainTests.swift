import Foundation
import Testing
import WorkflowRuntime
import WorkflowTesting

/// Declines the payment: a non-retryable failure with typed details, or, for `"flaky"`, a
/// retryable one.
struct ChargeCard: Activity {
    static let name = "test.charge-card"

    struct Decline: Codable, Sendable, Equatable {
        var code: Int
        var reason: String
    }

    func run(context: ActivityContext, input: String) async throws -> String {
        if input == "flaky" { throw ApplicationError("gateway busy", type: "GatewayBusy") }
        throw try ApplicationError("card declined", type: "CardDeclined", nonRetryable: true, details: Decline(code: 51, reason: "funds"))
    }
}

/// Charges a card; with `handle`, catches the failure and reports what it could see of it.
struct Checkout: Workflow {
    static let name = "test.checkout"

    struct Input: Codable, Sendable {
        var card: String
        var handle: Bool
    }

    func run(context: WorkflowContext, input: Input) async throws -> String {
        let options = ActivityOptions(retryPolicy: RetryPolicy(initialInterval: .seconds(1), maximumAttempts: 2))
        guard input.handle else { return try await context.execute(ChargeCard.self, input.card, options: options) }
        do {
            return try await context.execute(ChargeCard.self, input.card, options: options)
        } catch let failure as ActivityFailure {
            let decline = try failure.cause.details?.decode(as: ChargeCard.Decline.self)
            return "\(failure.cause.type) \(failure.retryState?.rawValue ?? "-") \(failure.attempts) \(decline?.code ?? 0)"
        }
    }
}

@Suite("Failures keep their structure: type, details, cause and retry state")
struct FailureChainTests {
    private func withEnvironment(_ backend: StoreBackend, _ body: (TestWorkflowEnvironment) async throws -> Void) async throws {
        try await backend.withStore { store in
            var registry = WorkflowRegistry()
            registry.register(Checkout.self)
            registry.register(ChargeCard())
            let env = TestWorkflowEnvironment(registry: registry, store: store)
            defer { env.shutdown() }
            try await body(env)
        }
    }

    @Test("the workflow sees the activity's type, typed details, attempts and why retrying stopped", arguments: StoreBackend.allCases)
    func workflowSeesTheCause(backend: StoreBackend) async throws {
        try await withEnvironment(backend) { env in
            let declined = try await env.client.start(Checkout.self, id: "declined", input: .init(card: "4000", handle: true))
            #expect(try await env.result(of: declined, as: Checkout.self) == "CardDeclined nonRetryableFailure 1 51")
            let flaky = try await env.client.start(Checkout.self, id: "flaky", input: .init(card: "flaky", handle: true))
            #expect(try await env.result(of: flaky, as: Checkout.self) == "GatewayBusy maximumAttemptsReached 2 0")
        }
    }

    @Test("an uncaught activity failure fails the run with the chain intact, through history and replay", arguments: StoreBackend.allCases)
    func runFailureKeepsTheChain(backend: StoreBackend) async throws {
        try await withEnvironment(backend) { env in
            let handle = try await env.client.start(Checkout.self, id: "uncaught", input: .init(card: "4000", handle: false))
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .failed)
            let failure = try #require(run.failure)
            #expect(failure.type == "ActivityFailure" && failure.nonRetryable && failure.attempts == 1)
            #expect(failure.retryState == .nonRetryableFailure)
            let cause = try #require(failure.cause)
            #expect(cause.type == "CardDeclined" && cause.message == "card declined")
            #expect(try cause.details?.decode(as: ChargeCard.Decline.self) == ChargeCard.Decline(code: 51, reason: "funds"))
            #expect(WorkflowRunError(run: run).description.contains("caused by CardDeclined: card declined"))

            // The chain survives the stored history, JSON and replay.
            let history = try await env.store.history(runID: handle.runID)
            guard case .workflowFailed(let recorded)? = history.last?.kind else { Issue.record("\(history.map(\.kind.name))"); return }
            #expect(recorded == failure)
            let json = try JSONEncoder().encode(failure)
            #expect(try JSONDecoder().decode(ErrorInfo.self, from: json) == failure)
            var registry = WorkflowRegistry()
            registry.register(Checkout.self)
            try WorkflowReplayer(registry: registry).replay(history, runID: handle.runID)
        }
    }
}
