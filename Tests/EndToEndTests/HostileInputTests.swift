import Foundation
import KeelSQLite
import KeelTestSupport
import Testing
import WorkflowRuntime

/// What a hostile user gets through the CLI: extreme numbers, poison inputs, bad flags, control
/// characters, deep JSON, reused request ids and names that pass for roles. None of it may take
/// down a worker, and every refusal is a clear message with a non-zero exit code.
@Suite("Hostile input through the CLI", .serialized)
struct HostileInputTests {
    /// Every duration and count the diagnostic workflows take, with the base input it goes into.
    static let numericFields: [(workflow: String, base: String, field: String)] = [
        ("diagnostics.sleep", "", "seconds"),
        ("diagnostics.sequence", "\"steps\":1", "steps"),
        ("diagnostics.sequence", "\"steps\":1", "stepDelayMilliseconds"),
        ("diagnostics.sequence", "\"steps\":1", "stepTimeoutSeconds"),
        ("diagnostics.saga", "\"steps\":1", "steps"),
        ("diagnostics.saga", "\"steps\":1", "stepDelayMilliseconds"),
        ("diagnostics.saga", "\"steps\":1", "undoDelayMilliseconds"),
        ("diagnostics.saga", "\"steps\":1", "attemptTimeoutSeconds"),
        ("diagnostics.approval", "\"summary\":\"s\",\"payload\":{}", "deadlineSeconds"),
    ]
    /// JSON cannot carry NaN or infinity: those texts (and 1e400) must be refused at the start.
    static let extremes = ["0", "-1", "0.5", "1e10", "1e19", "-1e19", "1e308", "-1e308", "9223372036854775807", "NaN", "Infinity", "1e400"]

    @Test("extreme numbers in every duration and count: the worker never exits, each run ends or is blocked with a reason, well-formed runs complete",
          .timeLimit(.minutes(4)))
    func poisonNumbersNeverStopTheWorker() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = scratch.databaseURL
        #expect(try await WorkerBinary.run(["migrate"], database: db).status == 0)
        let daemon = try await Daemon(database: db, logPath: scratch.logPath)
        try await Daemon.waitForStart(logPath: scratch.logPath, count: 1)

        var cases: [(id: String, field: String, value: String, arguments: [String])] = []
        for (index, (workflow, base, field)) in Self.numericFields.enumerated() {
            for (valueIndex, value) in Self.extremes.enumerated() {
                let input = "{" + [base, "\"\(field)\":\(value)"].filter { !$0.isEmpty }.joined(separator: ",") + "}"
                let id = "poison-\(index)-\(valueIndex)"
                cases.append((id, field, value, ["start", workflow, "--id", id, "--input", input]))
            }
        }
        let wellFormed = (0..<4).map { "healthy-\($0)" }
        var commands = cases.map { ($0.id, $0.arguments) }
        for (index, id) in wellFormed.enumerated() {
            // Spread among the poison inputs, so the worker serves both at once.
            commands.insert((id, ["start", "diagnostics.sequence", "--id", id, "--input", "{\"steps\":3}"]), at: index * 30)
        }
        var outputs: [String: WorkerBinary.Output] = [:]
        for chunk in stride(from: 0, to: commands.count, by: 8) {
            try await withThrowingTaskGroup(of: (String, WorkerBinary.Output).self) { group in
                for (id, arguments) in commands[chunk..<min(chunk + 8, commands.count)] {
                    group.addTask { (id, try await WorkerBinary.run(arguments, database: db)) }
                }
                for try await (id, output) in group { outputs[id] = output }
            }
        }

        let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
        let client = WorkflowClient(store: store)
        var accepted: [(id: String, field: String, value: String)] = []
        for item in cases {
            let output = try #require(outputs[item.id])
            if output.status == 0 {
                accepted.append((item.id, item.field, item.value))
            } else {
                // Refused at the start: a clear message, exit code 2, nothing written.
                #expect(output.status == 2, "\(item.id) \(item.field)=\(item.value): \(output.stderr)")
                #expect(output.stderr.contains("error: "), "\(item.id): \(output.stderr)")
                #expect(try await store.findRun(workflowID: item.id) == nil)
            }
        }
        for literal in ["NaN", "Infinity", "1e400"] {
            #expect(!accepted.contains { $0.value == literal }, "\(literal) must be refused at the start")
        }
        #expect(accepted.count > 40, "most extreme values are valid JSON numbers and reach the worker")

        for item in accepted {
            let run = try await eventually("\(item.id) (\(item.field)=\(item.value)) to end or be blocked", timeout: .seconds(60)) {
                let run = try await store.findRun(workflowID: item.id)
                return run.flatMap { $0.status == .running ? nil : $0 }
            }
            switch run.status {
            case .failed:
                let failure = try #require(run.failure)
                #expect(failure.type == "InvalidValue", "\(item.id): \(failure)")
                #expect(failure.message.contains(item.field) || failure.message.contains("delayMilliseconds"), "\(item.id): \(failure)")
            case .blocked:
                #expect(run.statusReason?.isEmpty == false, "\(item.id) blocked without a reason")
            case .completed, .compensated:
                break  // a value the workflow can use (0, 0.5, a count in range)
            default:
                Issue.record("\(item.id) (\(item.field)=\(item.value)) ended \(run.status)")
            }
        }
        for id in wellFormed {
            #expect(outputs[id]?.status == 0, "\(outputs[id]?.stderr ?? "")")
            let run = try #require(try await store.findRun(workflowID: id))
            #expect(try await client.waitForClose(runID: run.runID, timeout: .seconds(60)).status == .completed)
        }
        let log = try String(contentsOfFile: scratch.logPath, encoding: .utf8)
        #expect(!log.contains("Fatal error"), "the worker trapped: \(log.suffix(2000))")
        #expect(try await daemon.terminate() == 0, "the worker must still be running, and drain on SIGTERM")
    }

    @Test("flags with NaN, infinity, huge, zero or negative values are refused with exit code 2 before anything runs")
    func badFlags() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = scratch.databaseURL
        #expect(try await WorkerBinary.run(["migrate"], database: db).status == 0)
        let refused: [([String], String)] = [
            (["run", "--workflow-task-timeout", "nan"], "--workflow-task-timeout"),
            (["run", "--workflow-task-timeout", "inf"], "--workflow-task-timeout"),
            (["run", "--workflow-task-timeout", "1e300"], "--workflow-task-timeout"),
            (["run", "--workflow-task-timeout", "0"], "--workflow-task-timeout"),
            (["run", "--activity-timeout", "inf"], "--activity-timeout"),
            (["run", "--activity-timeout=-5"], "--activity-timeout"),
            (["run", "--workflow-slots", "0"], "--workflow-slots"),
            (["run", "--activity-slots=-1"], "--activity-slots"),
            (["run", "--poll-interval-ms", "0"], "--poll-interval-ms"),
            (["run", "--poll-interval-ms", "-1"], "--poll-interval-ms"),  // the parser's own refusal, exit code 2 too
            (["run", "--workflow-slots", "many"], "--workflow-slots"),
            (["start", "diagnostics.sequence", "--id", "t1", "--input", "{\"steps\":1}", "--wait", "--timeout", "nan"], "--timeout"),
            (["start", "diagnostics.sequence", "--id", "t2", "--input", "{\"steps\":1}", "--wait", "--timeout", "1e400"], "--timeout"),
            (["start", "diagnostics.sequence", "--id", "t3", "--input", "{\"steps\":1}", "--wait", "--timeout=-1"], "--timeout"),
        ]
        for (arguments, flag) in refused {
            let output = try await WorkerBinary.run(arguments, database: db)
            #expect(output.status == 2, "\(arguments): \(output.stderr)")
            #expect(output.stderr.contains(flag), "\(arguments): \(output.stderr)")
            #expect(!output.stderr.contains("worker started"), "\(arguments) must not start a worker")
        }
        #expect(try await WorkerBinary.run(["list"], database: db).stdout.contains("no runs"), "a refused start writes nothing")
    }

    @Test("ids with control characters or only whitespace are refused; stored control characters are printed escaped")
    func controlCharacters() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = scratch.databaseURL
        #expect(try await WorkerBinary.run(["migrate"], database: db).status == 0)
        for id in ["evil\u{1B}[31mred", "two\nlines", "tab\there", "   ", "", "bidi\u{202E}txt"] {
            let output = try await WorkerBinary.run(["start", "diagnostics.wait-signal", "--id", id, "--input", "{}"], database: db)
            #expect(output.status == 2, "\(id.debugDescription): \(output.stderr)")
            #expect(!output.stderr.contains("\u{1B}") && !output.stderr.dropLast().contains("\n"), "raw control characters in \(output.stderr.debugDescription)")
        }
        let signal = try await WorkerBinary.run(["signal", "nobody", "go\u{1B}[2J"], database: db)
        #expect(signal.status == 2, "\(signal.stderr)")

        // A run written before these checks (straight through the store) is shown with escapes.
        let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
        let evil = "old\u{1B}]0;owned\u{07}id"
        _ = try await store.startWorkflow(StartWorkflowRequest(workflowID: evil, workflowType: "diagnostics.wait-signal",
                                                               input: Payload(json: "{\"note\":\"a\\u001b[2Jb\"}"), now: Date()))
        for arguments in [["list"], ["show", evil, "--history"]] {
            let output = try await WorkerBinary.run(arguments, database: db)
            #expect(output.status == 0, "\(arguments): \(output.stderr)")
            #expect(!output.stdout.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 }, "\(arguments): \(output.stdout.debugDescription)")
            #expect(output.stdout.contains("old\\u{1B}]0;owned\\u{7}id"), "\(arguments): \(output.stdout)")
        }
    }

    @Test("a 10,000-deep JSON is 'nested too deeply'; large inputs come from a file or standard input")
    func deepAndLargeInputs() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = scratch.databaseURL
        #expect(try await WorkerBinary.run(["migrate"], database: db).status == 0)
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        let deepFile = scratch.directory.appendingPathComponent("deep.json")
        try Data(deep.utf8).write(to: deepFile)
        let deepStart = try await WorkerBinary.run(["start", "diagnostics.wait-signal", "--id", "deep", "--input", "@\(deepFile.path)"], database: db)
        #expect(deepStart.status == 2)
        #expect(deepStart.stderr.contains("nested too deeply"), "\(deepStart.stderr)")

        // 300 KB: more than a command line carries on Linux.
        let large = "{\"text\":\"" + String(repeating: "x", count: 300_000) + "\"}"
        let largeFile = scratch.directory.appendingPathComponent("large.json")
        try Data(large.utf8).write(to: largeFile)
        let fromFile = try await WorkerBinary.run(["start", "diagnostics.wait-signal", "--id", "large", "--input", "@\(largeFile.path)"], database: db)
        #expect(fromFile.status == 0, "\(fromFile.stderr)")
        let fromStdin = try await WorkerBinary.run(["signal", "large", "go", "--payload", "-"], database: db, standardInput: Data(large.utf8))
        #expect(fromStdin.status == 0, "\(fromStdin.stderr)")
        let deepSignal = try await WorkerBinary.run(["signal", "large", "go", "--payload", "-"], database: db, standardInput: Data(deep.utf8))
        #expect(deepSignal.status == 2)
        #expect(deepSignal.stderr.contains("nested too deeply"), "\(deepSignal.stderr)")
        let missing = try await WorkerBinary.run(["start", "diagnostics.wait-signal", "--id", "m", "--input", "@/no/such/file.json"], database: db)
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("/no/such/file.json"), "\(missing.stderr)")

        let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
        let run = try #require(try await store.findRun(workflowID: "large"))
        #expect(run.input.data.count == large.utf8.count)
        let inbox = try await store.pendingWork(runID: run.runID).inbox
        #expect(inbox.count == 1, "the payload read from standard input was stored once")
        #expect(try await store.findRun(workflowID: "deep") == nil)
    }

    @Test("a request id reused for a different signal is refused; a retry of the same signal is a duplicate")
    func reusedSignalRequestID() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = scratch.databaseURL
        #expect(try await WorkerBinary.run(["migrate"], database: db).status == 0)
        #expect(try await WorkerBinary.run(["start", "diagnostics.wait-signal", "--id", "r", "--input", "{}"], database: db).status == 0)
        #expect(try await WorkerBinary.run(["signal", "r", "other", "--request-id", "A"], database: db).status == 0)
        let retry = try await WorkerBinary.run(["signal", "r", "other", "--request-id", "A"], database: db)
        #expect(retry.status == 0)
        #expect(retry.stdout.contains("duplicate"))
        let reused = try await WorkerBinary.run(["signal", "r", "go", "--payload", "{\"p\":3}", "--request-id", "A"], database: db)
        #expect(reused.status == 2, "\(reused.stderr)")
        #expect(reused.stderr.contains("request id 'A' was already used for a different signal"), "\(reused.stderr)")
        let samePayloadOtherName = try await WorkerBinary.run(["signal", "r", "go", "--request-id", "A"], database: db)
        #expect(samePayloadOtherName.status == 2, "\(samePayloadOtherName.stderr)")

        let daemon = try await Daemon(database: db, logPath: scratch.logPath)
        try await Daemon.waitForStart(logPath: scratch.logPath, count: 1)
        #expect(try await WorkerBinary.run(["signal", "r", "go", "--payload", "{\"p\":3}", "--request-id", "B"], database: db).status == 0)
        let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
        let run = try #require(try await store.findRun(workflowID: "r"))
        let closed = try await WorkflowClient(store: store).waitForClose(runID: run.runID, timeout: .seconds(30))
        #expect(closed.result == Payload(json: "{\"p\":3}"))
        let signals = try await store.history(runID: run.runID).compactMap { event -> String? in
            if case .signalReceived(let name, _, let requestID) = event.kind { return "\(name)/\(requestID ?? "-")" }
            return nil
        }
        #expect(signals == ["other/A", "go/B"], "the refused signals wrote nothing")
        #expect(try await daemon.terminate() == 0)
    }

    @Test("worker run --require-approvers blocks a run whose approval names no approvers; others go on")
    func requireApprovers() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = scratch.databaseURL
        #expect(try await WorkerBinary.run(["migrate"], database: db).status == 0)
        let daemon = try await Daemon(database: db, logPath: scratch.logPath, extraArguments: ["--require-approvers"])
        try await Daemon.waitForStart(logPath: scratch.logPath, count: 1)
        let open = #"{"summary":"anyone","payload":{},"deadlineSeconds":3600}"#
        let named = #"{"summary":"named","payload":{},"deadlineSeconds":3600,"approvers":["ada"]}"#
        #expect(try await WorkerBinary.run(["start", "diagnostics.approval", "--id", "open", "--input", open], database: db).status == 0)
        #expect(try await WorkerBinary.run(["start", "diagnostics.approval", "--id", "named", "--input", named], database: db).status == 0)

        let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
        let blocked = try await eventually("the run without approvers to be blocked") {
            try await store.findRun(workflowID: "open").flatMap { $0.status == .blocked ? $0 : nil }
        }
        #expect(blocked.statusReason?.contains("names no approvers") == true, "\(blocked.statusReason ?? "")")
        #expect(try await WorkflowClient(store: store).approvals(ApprovalQuery(runID: blocked.runID)).isEmpty, "no request was recorded")
        let pending = try await eventually("the named approval to be pending") {
            try await WorkflowClient(store: store).approvals(ApprovalQuery(pendingOnly: true)).first { $0.workflowID == "named" }
        }
        #expect(try await WorkerBinary.run(["approve", pending.id, "--by", "ada"], database: db).status == 0)
        let namedRun = try #require(try await store.findRun(workflowID: "named"))
        #expect(try await WorkflowClient(store: store).waitForClose(runID: namedRun.runID, timeout: .seconds(30)).status == .completed)
        #expect(try await daemon.terminate() == 0)
    }
}
