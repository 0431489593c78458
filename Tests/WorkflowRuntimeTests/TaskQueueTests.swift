import Foundation
import Logging
import Testing
import WorkflowRuntime

/// Bills on the `billing` queue, then greets on the run's own queue.
struct BillThenGreet: Workflow {
    static let name = "test.bill-then-greet"

    func run(context: WorkflowContext, input: String) async throws -> String {
        let billed = try await context.execute(Uppercase.self, "billed \(input)", options: ActivityOptions(taskQueue: "billing"))
        let greeted = try await context.execute(Uppercase.self, "hello \(input)")
        return "\(billed), \(greeted)"
    }
}

@Suite("Task queues: a worker runs only the queues it serves")
struct TaskQueueTests {
    private static func worker(_ store: any WorkflowStore, queues: [String]) -> Worker {
        var registry = testRegistry()
        registry.register(BillThenGreet.self)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return Worker(store: store, registry: registry,
                      configuration: WorkerConfiguration(pollInterval: .milliseconds(20), taskQueues: queues), logger: logger)
    }

    @Test("an activity on a queue no worker serves waits, visibly; a worker serving it runs it", arguments: StoreBackend.allCases)
    func activityQueue(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            var registry = testRegistry()
            registry.register(BillThenGreet.self)
            let client = WorkflowClient(store: store, registry: registry)
            let handle = try await client.start(BillThenGreet.self, id: "bill", input: "ada")
            try await Self.worker(store, queues: [TaskQueue.default]).withRunning {
                try await waitFor("the billing activity to be scheduled") {
                    try await store.pendingWork(runID: handle.runID).activities.first?.taskQueue == "billing"
                }
                try await Task.sleep(for: .milliseconds(300))
                let waiting = try #require(try await store.pendingWork(runID: handle.runID).activities.first)
                #expect(waiting.attempt == 0 && waiting.leaseOwner == nil, "no worker serves billing: the attempt waits")
            }
            let result = try await Self.worker(store, queues: ["billing", TaskQueue.default]).withRunning {
                try await client.result(of: handle, as: BillThenGreet.self, timeout: .seconds(20))
            }
            #expect(result == "BILLED ADA, HELLO ADA")
        }
    }

    @Test("a run started on a queue is processed only by workers serving it; its activities follow it", arguments: StoreBackend.allCases)
    func workflowQueue(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            var registry = testRegistry()
            registry.register(BillThenGreet.self)
            let client = WorkflowClient(store: store, registry: registry)
            let handle = try await client.start(BillThenGreet.self, id: "eu", input: "grace", taskQueue: "eu")
            try await Self.worker(store, queues: [TaskQueue.default, "billing"]).withRunning {
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await store.history(runID: handle.runID).count == 1, "no worker of queue eu: the run waits")
            }
            let result = try await Self.worker(store, queues: ["eu", "billing"]).withRunning {
                try await client.result(of: handle, as: BillThenGreet.self, timeout: .seconds(20))
            }
            #expect(result == "BILLED GRACE, HELLO GRACE")
            await #expect(throws: KeelError.self) {
                try await client.start(BillThenGreet.self, id: "bad", input: "x", taskQueue: " ")
            }
        }
    }
}
