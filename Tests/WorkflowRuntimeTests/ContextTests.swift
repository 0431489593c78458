import Foundation
import Logging
import Synchronization
import Testing
import WorkflowRuntime
import WorkflowTesting

/// Collects log messages.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])
    var messages: [String] { lines.withLock { $0 } }

    var logger: Logger {
        Logger(label: "capture") { _ in Handler(capture: self) }
    }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            capture.lines.withLock { $0.append(event.message.description) }
        }
    }
}

struct LoggingWorkflow: Workflow {
    static let name = "test.logging"
    func run(context: WorkflowContext, input: Empty) async throws -> String {
        context.logger.info("before the sleep")
        try await context.sleep(for: .seconds(60))
        context.logger.info("after the sleep")
        return try await context.execute(Uppercase.self, "x")
    }
}

/// Heartbeats its progress; the first attempt fails after step 2, the next resumes from it.
struct ResumableUpload: Activity {
    static let name = "test.resumable-upload"

    func run(context: ActivityContext, input: Int) async throws -> [Int] {
        let resumeFrom = try context.lastHeartbeatDetails?.decode(as: Int.self) ?? 0
        var done: [Int] = []
        for chunk in (resumeFrom + 1)...input {
            done.append(chunk)
            try await context.heartbeat(chunk)
            if context.attempt == 1 && chunk == 2 { throw ApplicationError("connection reset", type: "Network") }
        }
        return done
    }
}

struct UploadWorkflow: Workflow {
    static let name = "test.upload"
    func run(context: WorkflowContext, input: Int) async throws -> [Int] {
        try await context.execute(ResumableUpload.self, input, options: ActivityOptions(heartbeatTimeout: .seconds(10)))
    }
}

/// Declares the wrong output type for Uppercase: its result ("X") does not decode as Int.
struct MistypedResult: Activity {
    static let name = Uppercase.name
    func run(context: ActivityContext, input: String) async throws -> Int { 0 }
}

struct DecodesWrongResult: Workflow {
    static let name = "test.decodes-wrong-result"
    func run(context: WorkflowContext, input: Empty) async throws -> Int {
        do {
            return try await context.execute(MistypedResult.self, "x")
        } catch {
            return -1  // A workflow that swallows errors must not hide a decoding bug.
        }
    }
}

@Suite("Workflow and activity contexts")
struct ContextTests {
    @Test("workflow logs are not repeated when the run is replayed")
    func loggingSuppressedOnReplay() async throws {
        var registry = testRegistry()
        registry.register(LoggingWorkflow.self)
        let capture = LogCapture()
        let env = try await TestWorkflowEnvironment(registry: registry, logger: capture.logger)
        defer { env.shutdown() }
        let handle = try await env.client.start(LoggingWorkflow.self, id: "logs", input: Empty())
        try await env.runUntilIdle()
        env.evictCachedRuns()  // the next task replays from history
        #expect(try await env.result(of: handle, as: LoggingWorkflow.self) == "X")
        #expect(capture.messages.filter { $0 == "before the sleep" }.count == 1)
        #expect(capture.messages.filter { $0 == "after the sleep" }.count == 1)
    }

    @Test("heartbeat details reach the next attempt, which keeps the idempotency key")
    func heartbeatDetails() async throws {
        var registry = testRegistry()
        registry.register(UploadWorkflow.self)
        registry.register(ResumableUpload())
        let env = try await TestWorkflowEnvironment(registry: registry)
        defer { env.shutdown() }
        let handle = try await env.client.start(UploadWorkflow.self, id: "upload", input: 4)
        #expect(try await env.result(of: handle, as: UploadWorkflow.self) == [3, 4])
        let history = try await env.store.history(runID: handle.runID)
        #expect(history.contains { $0.kind == .activityCompleted(seq: 1, result: Payload(json: "[3,4]"), attempt: 2) })
    }

    @Test("an undecodable activity result blocks the run (a code bug), even if the workflow catches errors")
    func undecodableResultBlocks() async throws {
        var registry = testRegistry()
        registry.register(DecodesWrongResult.self)
        let env = try await TestWorkflowEnvironment(registry: registry)
        defer { env.shutdown() }
        let handle = try await env.client.start(DecodesWrongResult.self, id: "mistyped", input: Empty())
        try await env.runUntilIdle()
        let run = try #require(try await env.store.run(runID: handle.runID))
        #expect(run.status == .blocked)
        #expect(run.statusReason?.contains("cannot decode the result of activity 'test.uppercase'") == true)
    }

    @Test("a workflow output that cannot be encoded fails the run with the type's name; it is not left running")
    func unencodableOutputFails() async throws {
        var registry = testRegistry()
        registry.register(UnencodableOutput.self)
        let env = try await TestWorkflowEnvironment(registry: registry)
        defer { env.shutdown() }
        let handle = try await env.client.start(UnencodableOutput.self, id: "nan", input: Empty())
        let run = try await env.waitForClose(runID: handle.runID)
        #expect(run.status == .failed)
        #expect(run.failure?.message.contains("Double") == true)
    }
}

/// Returns NaN, which JSON cannot represent.
struct UnencodableOutput: Workflow {
    static let name = "test.unencodable-output"
    func run(context: WorkflowContext, input: Empty) async throws -> Double { .nan }
}
