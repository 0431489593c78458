import Foundation
import KeelSQLite
import KeelTestSupport
import Testing
import WorkflowRuntime
import Workflows

@Suite("CLI for long processes: signal-with-start, id reuse, children, continue-as-new, replay of versions", .serialized)
struct LongProcessCLITests {
    @Test("worker signal --start starts once then only signals; worker start --id-reuse-policy refuses clearly")
    func signalWithStartAndReuse() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = scratch.databaseURL
        #expect(try await WorkerBinary.run(["migrate"], database: db).status == 0)
        let first = try await WorkerBinary.run(
            ["signal", "envelope-7", "go", "--payload", #""signed""#, "--request-id", "hook-1",
             "--start", "diagnostics.wait-signal", "--input", "{}"], database: db)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("started envelope-7"))
        let again = try await WorkerBinary.run(
            ["signal", "envelope-7", "go", "--payload", #""signed""#, "--request-id", "hook-1",
             "--start", "diagnostics.wait-signal"], database: db)
        #expect(again.status == 0)
        #expect(!again.stdout.contains("started") && again.stdout.contains("duplicate"))
        let badType = try await WorkerBinary.run(
            ["signal", "envelope-8", "go", "--start", "no.such.type"], database: db)
        #expect(badType.status == 2 && badType.stderr.contains("unknown workflow type"))
        let inputWithoutStart = try await WorkerBinary.run(["signal", "envelope-8", "go", "--input", "{}"], database: db)
        #expect(inputWithoutStart.status == 2 && inputWithoutStart.stderr.contains("--start"))

        let open = try await WorkerBinary.run(
            ["start", "diagnostics.wait-signal", "--id", "envelope-7", "--id-reuse-policy", "rejectDuplicate"],
            database: db)
        #expect(open.status == 0 && open.stdout.contains("already running"))
        #expect(try await WorkerBinary.run(["terminate", "envelope-7", "--reason", "test"], database: db).status == 0)
        let refused = try await WorkerBinary.run(
            ["start", "diagnostics.wait-signal", "--id", "envelope-7", "--id-reuse-policy", "rejectDuplicate"],
            database: db)
        #expect(refused.status == 4)
        #expect(refused.stderr.contains("rejectDuplicate"), "\(refused.stderr)")
        let unknownPolicy = try await WorkerBinary.run(
            ["start", "diagnostics.wait-signal", "--id", "x", "--id-reuse-policy", "sometimes"], database: db)
        #expect(unknownPolicy.status == 2)
        let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
        #expect(try await store.listRuns(RunQuery(workflowID: "envelope-7")).count == 1, "the refusal wrote nothing")
    }

    @Test("worker list --parent, worker show with children and previous runs, worker list --all-runs",
          .timeLimit(.minutes(2)))
    func childrenAndChains() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = scratch.databaseURL
        #expect(try await WorkerBinary.run(["migrate"], database: db).status == 0)
        let daemon = try await Daemon(database: db, logPath: scratch.logPath)
        try await Daemon.waitForStart(logPath: scratch.logPath, count: 1)
        let parent = try await WorkerBinary.run(
            ["start", "diagnostics.parent", "--id", "dd", "--input", #"{"children":2}"#, "--wait", "--timeout", "60"],
            database: db)
        #expect(parent.status == 0, "\(parent.stderr)")
        let children = try await WorkerBinary.run(["list", "--parent", "dd", "--json"], database: db)
        let runs = try JSONDecoder.iso8601.decode([WorkflowRun].self, from: Data(children.stdout.utf8))
        #expect(runs.count == 2 && runs.allSatisfy { $0.parent?.workflowID == "dd" && $0.status == .completed })
        let show = try await WorkerBinary.run(["show", "dd"], database: db)
        #expect(show.stdout.contains("Children") && show.stdout.contains(runs[0].workflowID), "\(show.stdout)")
        #expect(show.stdout.contains("childWorkflowClosed"))
        let child = try await WorkerBinary.run(["show", runs[0].workflowID], database: db)
        #expect(child.stdout.contains("Parent") && child.stdout.contains("dd (run"))

        #expect(try await WorkerBinary.run(
            ["start", "diagnostics.counter", "--id", "counter", "--input", #"{"continueEvery":1}"#], database: db).status == 0)
        for amount in [3, 4] {
            #expect(try await WorkerBinary.run(
                ["signal", "counter", "add", "--payload", "\(amount)"], database: db).status == 0)
        }
        #expect(try await WorkerBinary.run(["signal", "counter", "stop"], database: db).status == 0)
        let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
        _ = try await eventually("the counter's chain closed", timeout: .seconds(30)) {
            try await store.findRun(workflowID: "counter")?.status == .completed ? true : nil
        }
        #expect(try await daemon.terminate() == 0)
        let counter = try await WorkerBinary.run(["show", "counter"], database: db)
        #expect(counter.stdout.contains("Previous runs") && counter.stdout.contains("continuedAsNew"), "\(counter.stdout)")
        #expect(counter.stdout.contains("\"total\":7"))
        let latest = try await WorkerBinary.run(["list", "--type", "diagnostics.counter"], database: db)
        #expect(latest.stdout.split(separator: "\n").count == 2, "header and one row: \(latest.stdout)")
        let all = try await WorkerBinary.run(["list", "--type", "diagnostics.counter", "--all-runs"], database: db)
        #expect(all.stdout.split(separator: "\n").count == 4, "header and three runs: \(all.stdout)")

        let staged = try await WorkerBinary.run(["list", "--stage", "waiting-for-children"], database: db)
        #expect(staged.stdout.contains("dd ") && staged.stdout.contains("waiting-for-children"), "\(staged.stdout)")
        let byTotal = try await WorkerBinary.run(["list", "--attr", "counterTotal=7", "--json"], database: db)
        let matched = try JSONDecoder.iso8601.decode([WorkflowRun].self, from: Data(byTotal.stdout.utf8))
        #expect(matched.map(\.workflowID) == ["counter"])
        #expect(counter.stdout.contains("counterTotal=7"))
        let mistyped = try await WorkerBinary.run(["list", "--attr", "counterTotal=seven"], database: db)
        #expect(mistyped.status == 2 && mistyped.stderr.contains("int"), "\(mistyped.stderr)")
        let unknown = try await WorkerBinary.run(["list", "--attr", "nothing=1"], database: db)
        #expect(unknown.status == 2 && unknown.stderr.contains("nothing"))
    }

    @Test("worker replay passes a run recorded with a supported version and exits 6 on one whose version was dropped")
    func replayVersions() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = scratch.databaseURL
        #expect(try await WorkerBinary.run(["migrate"], database: db).status == 0)
        let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
        let now = Date()
        // Two runs as builds recorded them: one at the current version, one at version 0, which
        // this build no longer supports.
        for (id, version) in [("current", 1), ("old", 0)] {
            let runID = try await store.startWorkflow(StartWorkflowRequest(
                workflowID: id, workflowType: DiagnosticCounter.name, input: .emptyObject, now: now)).runID
            let task = try #require(try await store.claimWorkflowTasks(
                owner: "old-build", limit: 1, lease: .seconds(30), now: now, cachedTaskVersion: { _ in nil }).first)
            let marker = HistoryEvent.Kind.markerRecorded(
                seq: 1, name: "version:\(DiagnosticCounter.overflowCheck)", value: Payload(json: "\(version)"))
            #expect(try await store.completeWorkflowTask(WorkflowTaskCompletion(
                runID: runID, workflowID: id, leaseToken: task.leaseToken, expectedTaskVersion: task.taskVersion,
                consumedInboxThrough: nil, events: [(marker, now)], eagerLeases: [:], now: now))
                == .committed(taskVersion: 1))
        }
        for id in ["current", "old"] {
            _ = try await store.signal(SignalRequest(workflowID: id, name: "add", payload: Payload(json: "5"), now: now))
        }
        let passes = try await WorkerBinary.run(["replay", "current"], database: db)
        #expect(passes.status == 0, "\(passes.stderr)")
        #expect(passes.stdout.contains("deterministic"))
        let dropped = try await WorkerBinary.run(["replay", "old"], database: db)
        #expect(dropped.status == 6)
        #expect(dropped.stderr.contains(DiagnosticCounter.overflowCheck) && dropped.stderr.contains("version 0")
                && dropped.stderr.contains("1...1"), "\(dropped.stderr)")
    }
}
