import Foundation
import Testing
import WorkflowRuntime
import WorkflowTesting

/// Collects `add` signals until none comes within a second of workflow time, while an activity
/// and an approval are outstanding; returns what it collected once both are done — or, when it is
/// cancelled, what it collected and "cancelled".
struct QuietPeriodCollector: Workflow {
    static let name = "test.quiet-period-collector"

    func run(context: WorkflowContext, input: String) async throws -> [String] {
        async let step = context.execute(Uppercase.self, input)
        let approval = try await context.startApproval("go", summary: "go", payload: input, approvers: ["ada"], timeout: .seconds(3600))
        var seen: [String] = []
        do {
            while let item = try await context.waitForSignal("add", as: String.self, timeout: .seconds(1)) {
                seen.append(item)
            }
            _ = try await step
            _ = try await approval.decision()
        } catch is WorkflowCancelledError {
            seen.append("cancelled")
        }
        return seen
    }
}

/// What can land in a run's inbox before its next workflow task.
enum InboxArrival: String, CaseIterable, Sendable {
    case signal, timerFire, activityOutcome, approvalDecision, cancellation
}

@Suite("A task delivers its signals first: an acknowledged signal is never unseen at close")
struct SignalOrderingTests {
    /// Every order in which `items` can arrive.
    static func permutations<T>(_ items: [T]) -> [[T]] {
        guard items.count > 1 else { return [items] }
        return items.indices.flatMap { index -> [[T]] in
            var rest = items
            let first = rest.remove(at: index)
            return permutations(rest).map { [first] + $0 }
        }
    }

    static func orders(_ arrivals: [InboxArrival]) -> [String] {
        permutations(arrivals).map { $0.map(\.rawValue).joined(separator: ",") }
    }

    @Test("a signal against a timer fire, an activity outcome and an approval decision, in every order within one task",
          arguments: StoreBackend.allCases, orders([.signal, .timerFire, .activityOutcome, .approvalDecision]))
    func signalSeenInEveryOrder(backend: StoreBackend, order: String) async throws {
        try await deliver(order, on: backend, expecting: ["late"])
    }

    @Test("the same with a cancellation among them: the code sees the signal, then the cancellation",
          arguments: [StoreBackend.sqlite], orders(InboxArrival.allCases))
    func signalSeenBeforeCancellation(backend: StoreBackend, order: String) async throws {
        try await deliver(order, on: backend, expecting: ["late", "cancelled"])
    }

    /// Lines up `order` (comma-separated ``InboxArrival``s) in a run's inbox, lets one task deliver
    /// them all, and checks what the code saw.
    private func deliver(_ order: String, on backend: StoreBackend, expecting expected: [String]) async throws {
        try await backend.withStore { store in
            var registry = testRegistry()
            registry.register(QuietPeriodCollector.self)
            let env = TestWorkflowEnvironment(registry: registry, store: store, eagerActivities: false)
            defer { env.shutdown() }
            let handle = try await env.client.start(QuietPeriodCollector.self, id: "collector", input: "step")
            // One task: the activity is scheduled, the approval requested, the quiet-period timer started.
            #expect(try await env.runWorkflowTasks() == 1)

            // Everything arrives before the next workflow task, in this order.
            for arrival in order.split(separator: ",").compactMap({ InboxArrival(rawValue: String($0)) }) {
                switch arrival {
                case .signal:
                    #expect(try await env.client.signal(workflowID: "collector", name: "add", value: "late") == .delivered(runID: handle.runID))
                case .timerFire:
                    env.clock.advance(by: .seconds(1))
                    #expect(try await store.fireDueTimers(now: env.clock.now(), limit: 10) == 1)
                case .activityOutcome:
                    let attempt = try #require(try await store.claimActivityTasks(owner: "test", limit: 1, defaultLease: .seconds(60),
                                                                                  now: env.clock.now()).first)
                    #expect(try await store.reportActivity(ActivityReport(
                        runID: attempt.runID, seq: attempt.seq, leaseToken: attempt.leaseToken, attempt: attempt.attempt,
                        outcome: .completed(try Payload.encode("STEP")), now: env.clock.now())))
                case .approvalDecision:
                    let approval = try #require(try await env.client.approvals(ApprovalQuery(pendingOnly: true)).first)
                    try await env.client.approve(approval.id, by: "ada")
                case .cancellation:
                    try await env.client.cancel(workflowID: "collector", reason: "test")
                }
            }
            let arrivals = order.split(separator: ",").count
            #expect(try await store.pendingWork(runID: handle.runID).inbox.count == arrivals, "all wait for one task")
            #expect(try await env.result(of: handle, as: QuietPeriodCollector.self) == expected, "order \(order)")
        }
    }
}
