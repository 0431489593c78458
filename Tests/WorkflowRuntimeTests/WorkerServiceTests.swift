import Activities
import Foundation
import KeelSQLite
import Logging
import Testing
import WorkflowRuntime
import Workflows

@Suite("Worker service in process")
struct WorkerServiceTests {
    private func makeWorker(_ path: String, pollInterval: Duration = .milliseconds(50)) async throws
        -> (Worker, WorkflowClient, SQLWorkflowStore)
    {
        let store = try SQLWorkflowStore(sqlitePath: path)
        try await store.migrate()
        var registry = testRegistry()
        registry.registerDiagnosticWorkflows()
        registry.registerDiagnosticActivities(effects: try SQLiteDiagnosticEffects(path: path))
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let worker = Worker(store: store, registry: registry, configuration: WorkerConfiguration(pollInterval: pollInterval), logger: logger)
        var client = WorkflowClient(store: store, registry: registry)
        client.localWorker = worker
        return (worker, client, store)
    }

    @Test("timers due a moment apart each fire when due, not a poll interval after the first", .timeLimit(.minutes(1)))
    func timersDueApartFireOnTime() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("keel-worker-\(UUID().uuidString).sqlite").path
        // A poll interval far longer than the sleeps: only the timer loop's own wake-ups can be on time.
        let (worker, client, _) = try await makeWorker(path, pollInterval: .seconds(20))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await worker.run() }
            defer { worker.stop() }
            var handles: [WorkflowHandle] = []
            for index in 0..<10 {
                handles.append(try await client.start(DiagnosticSleep.self, id: "sleep-\(index)", input: .init(seconds: 1)))
                try await Task.sleep(for: .milliseconds(30))  // each timer due a moment after the previous one
            }
            for handle in handles {
                let output = try await client.result(of: handle, as: DiagnosticSleep.self, timeout: .seconds(30))
                let closed = try #require(try await client.waitForClose(runID: handle.runID).closedAt)
                // Generous for a loaded machine (5.3 s was seen under the whole suite's load), and
                // half the 20 s a missed wake-up would cost.
                #expect(closed.timeIntervalSince(output.intendedWake) < 10, "\(handle.workflowID) closed late")
            }
        }
    }

    @Test("eager start: the first task commits with the start; runs finish with the same history as a plain start",
          .timeLimit(.minutes(1)))
    func eagerStart() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("keel-worker-\(UUID().uuidString).sqlite").path
        let (worker, client, store) = try await makeWorker(path)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await worker.run() }
            defer { worker.stop() }
            // Wait until the worker accepts eager starts.
            var probe = try await client.start(DiagnosticThreeSteps.self, id: "probe-0", input: "x")
            var attempt = 0
            while try await store.history(runID: probe.runID).count == 1 && attempt < 100 {
                attempt += 1
                try await Task.sleep(for: .milliseconds(10))
                probe = try await client.start(DiagnosticThreeSteps.self, id: "probe-\(attempt)", input: "x")
            }
            let handles = try await withThrowingTaskGroup(of: WorkflowHandle.self) { starts in
                for index in 0..<50 {
                    starts.addTask { try await client.start(DiagnosticThreeSteps.self, id: "eager-\(index)", input: "hello") }
                }
                return try await starts.reduce(into: []) { $0.append($1) }
            }
            let step = ["activityScheduled", "activityCompleted"]
            let expected: [String] = ["workflowStarted"] + step + step + step + ["workflowCompleted"]
            for handle in handles {
                #expect(try await client.result(of: handle, as: DiagnosticThreeSteps.self, timeout: .seconds(20)) == "hello")
                let kinds = try await store.history(runID: handle.runID).map(\.kind.name)
                #expect(kinds == expected)
            }
            // Starting an open id eagerly returns the existing run and writes nothing.
            let waiting = try await client.start(DiagnosticWaitSignal.self, id: "open", input: .null)
            let again = try await client.start(DiagnosticWaitSignal.self, id: "open", input: .null)
            #expect(waiting.created && !again.created && again.runID == waiting.runID)
            try await client.signal(workflowID: "open", name: "go", value: "done")
            #expect(try await client.result(of: waiting, as: DiagnosticWaitSignal.self, timeout: .seconds(20)) == .string("done"))
        }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    @Test("withRunning: the worker runs while the body does and has drained when it returns; a bad configuration fails at once",
          .timeLimit(.minutes(1)))
    func scopedWorker() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("keel-worker-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let (worker, client, store) = try await makeWorker(path)
        let result = try await worker.withRunning {
            let handle = try await client.start(DiagnosticSequence.self, id: "scoped", input: .init(steps: 2))
            return try await client.result(of: handle, as: DiagnosticSequence.self, timeout: .seconds(20))
        }
        #expect(result.steps == 2)
        // The worker has stopped: a run started now waits for a task no one processes.
        let later = try await store.startWorkflow(StartWorkflowRequest(workflowID: "later", workflowType: DiagnosticSequence.name,
                                                                       input: try Payload.encode(DiagnosticSequence.Input(steps: 1)), now: Date()))
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await store.history(runID: later.runID).count == 1)

        let broken = Worker(store: store, registry: WorkflowRegistry(), configuration: WorkerConfiguration(workflowTaskSlots: 0))
        let error = await #expect(throws: KeelError.self) {
            try await broken.withRunning { try await Task.sleep(for: .seconds(3600)) }
        }
        #expect(error?.code == .invalidArgument)
    }

    @Test("bufferOne: the tick buffered behind a schedule's open run starts when that run closes, not at a poll",
          .timeLimit(.minutes(1)))
    func bufferedTickStartsOnClose() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("keel-worker-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        // Idle loops look for work every 30 s: only the close's own wake-up can start the buffered tick in time.
        let (worker, client, _) = try await makeWorker(path, pollInterval: .seconds(30))
        try await worker.withRunning {
            try await client.createSchedule(ScheduleDefinition(
                id: "yearly", cron: try CronExpression("@yearly"), workflowType: Collector.name,
                input: Payload(json: "1"), overlap: .bufferOne))
            guard case .started(let first, _) = try await client.triggerSchedule("yearly") else {
                Issue.record("the first trigger did not start a run")
                return
            }
            guard case .buffered(let tick) = try await client.triggerSchedule("yearly") else {
                Issue.record("the second trigger was not buffered behind the open run")
                return
            }
            let buffered = ScheduleDefinition.workflowID(scheduleID: "yearly", tick: tick)
            try await client.signal(workflowID: first, name: "item", value: "done")
            let closedAt = ContinuousClock.now
            var started: WorkflowRun?
            while started == nil, ContinuousClock.now - closedAt < .seconds(10) {
                try await Task.sleep(for: .milliseconds(20))
                started = try await client.list(RunQuery(workflowID: buffered)).first
            }
            #expect(started != nil, "the buffered tick did not start within 10 s of the run's close")
            #expect(ContinuousClock.now - closedAt < .seconds(10))
            #expect(try await client.schedule("yearly").bufferedTick == nil)
        }
    }
}
