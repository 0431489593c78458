import Foundation
import KeelSQLite
import Testing
import WorkflowRuntime

@Suite("CLI against a running daemon on one SQLite file", .serialized)
struct CLITests {
    @Test("worker run and several CLI processes use one SQLite file at the same time", .timeLimit(.minutes(2)))
    func daemonAndCLIShareFile() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = scratch.databaseURL
        #expect(try await WorkerBinary.run(["migrate"], database: db).status == 0)
        let daemon = try await Daemon(database: db, logPath: scratch.logPath)
        try await Daemon.waitForStart(logPath: scratch.logPath, count: 1)

        // Concurrent CLI processes: starts and listings while the daemon works.
        let starts = try await withThrowingTaskGroup(of: WorkerBinary.Output.self) { group in
            for index in 0..<6 {
                group.addTask { try await WorkerBinary.run(["start", "diagnostics.wait-signal", "--id", "wait-\(index)", "--input", "{}"], database: db) }
                group.addTask { try await WorkerBinary.run(["list", "--json"], database: db) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for output in starts { #expect(output.status == 0, "\(output.stderr)") }
        let signals = try await withThrowingTaskGroup(of: WorkerBinary.Output.self) { group in
            for index in 0..<6 {
                group.addTask { try await WorkerBinary.run(["signal", "wait-\(index)", "go", "--payload", "{\"n\":\(index)}"], database: db) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for output in signals { #expect(output.status == 0, "\(output.stderr)") }

        let sequence = try await WorkerBinary.run(["start", "diagnostics.sequence", "--id", "seq", "--input", "{\"steps\":3}",
                                             "--wait", "--timeout", "30", "--json"], database: db)
        #expect(sequence.status == 0, "\(sequence.stderr)")
        let run = try JSONDecoder.iso8601.decode(WorkflowRun.self, from: Data(sequence.stdout.utf8))
        #expect(run.status == .completed)

        let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
        let client = WorkflowClient(store: store)
        for index in 0..<6 {
            let handle = try #require(try await store.findRun(workflowID: "wait-\(index)"))
            let closed = try await client.waitForClose(runID: handle.runID, timeout: .seconds(30))
            #expect(closed.result == Payload(json: "{\"n\":\(index)}"))
        }
        let show = try await WorkerBinary.run(["show", "seq", "--history"], database: db)
        #expect(show.status == 0)
        #expect(show.stdout.contains("completed"))
        #expect(show.stdout.contains("activityCompleted"))
        #expect(try await daemon.terminate() == 0)
    }

    @Test("bad input gets a clear error, a meaningful exit code, and writes nothing")
    func badInput() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = scratch.databaseURL
        let noFile = try await WorkerBinary.run(["list"], database: db)
        #expect(noFile.status == 5, "no file: unreachable, \(noFile.stderr)")
        #expect(noFile.stderr.contains("worker migrate"))
        #expect(FileManager.default.createFile(atPath: scratch.databasePath, contents: nil))
        for command in [["list"], ["run"]] {
            let unmigrated = try await WorkerBinary.run(command, database: db)
            #expect(unmigrated.status == 8, "\(command) on an empty file: not migrated, \(unmigrated.stderr)")
            #expect(unmigrated.stderr.contains("needs migrations") && unmigrated.stderr.contains("worker migrate"), "\(unmigrated.stderr)")
        }
        #expect(try await WorkerBinary.run(["migrate"], database: db).status == 0)

        let unknown = try await WorkerBinary.run(["start", "no.such.type", "--id", "x"], database: db)
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("unknown workflow type 'no.such.type'"))
        #expect(unknown.stderr.contains("diagnostics.sequence"))

        let malformed = try await WorkerBinary.run(["start", "diagnostics.sequence", "--id", "x", "--input", "{steps: 3"], database: db)
        #expect(malformed.status == 2)
        #expect(malformed.stderr.contains("not valid JSON"))

        let mistyped = try await WorkerBinary.run(["start", "diagnostics.sequence", "--id", "x", "--input", "{\"steps\":\"three\"}"], database: db)
        #expect(mistyped.status == 2)
        #expect(mistyped.stderr.contains("steps"))

        let missing = try await WorkerBinary.run(["signal", "nobody", "go"], database: db)
        #expect(missing.status == 3)
        #expect(missing.stderr.contains("no workflow with id 'nobody'"))

        let badURL = try await WorkerBinary.run(["list"], database: "mysql://localhost/keel")
        #expect(badURL.status == 2)

        // Nothing was written by the refused commands.
        #expect(try await WorkerBinary.run(["list"], database: db).stdout.contains("no runs"))

        // A signal to a closed run is refused and leaves the history as it was.
        #expect(try await WorkerBinary.run(["start", "diagnostics.wait-signal", "--id", "w", "--input", "{}"], database: db).status == 0)
        #expect(try await WorkerBinary.run(["terminate", "w", "--reason", "test"], database: db).status == 0)
        let closed = try await WorkerBinary.run(["signal", "w", "go"], database: db)
        #expect(closed.status == 4)
        #expect(closed.stderr.contains("is closed (terminated)"))
        let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
        let run = try #require(try await store.findRun(workflowID: "w"))
        #expect(try await store.history(runID: run.runID).map(\.kind.name) == ["workflowStarted", "workflowTerminated"])
    }
}

extension JSONDecoder {
    /// Decodes the CLI's `--json` output: ISO-8601 dates, payloads as JSON values.
    static var iso8601: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        decoder.userInfo[.payloadsAsJSONValues] = true
        return decoder
    }
}
