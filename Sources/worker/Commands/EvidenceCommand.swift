import Activities
import ArgumentParser
import Foundation
import KeelCLI
import WorkflowRuntime

/// `worker evidence ID [--out FILE]` and `worker evidence verify FILE`.
struct EvidenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evidence",
        abstract: "A run's evidence pack: history, approvals, compensations and provider ids, hash-chained.",
        subcommands: [Export.self, Verify.self], defaultSubcommand: Export.self)

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Export the latest run of a workflow id.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "Workflow id.") var id: String
        @Option(help: "Write the pack to this file (default: standard output).") var out: String?

        func run() async throws {
            try await reportingErrors {
                try await database.withDatabase { database in
                    let pack = try await EvidencePack.export(
                        workflowID: id, client: WorkflowClient(database: database),
                        ledger: OutboundLedger(database: database))
                    var data = try pack.encoded()
                    data.append(UInt8(ascii: "\n"))
                    guard let out else { return FileHandle.standardOutput.write(data) }
                    do { try data.write(to: URL(fileURLWithPath: out), options: .atomic) } catch {
                        throw KeelError(.invalidArgument, "cannot write --out \(out): \(error.localizedDescription)")
                    }
                    printLine("wrote \(pack.records.count) records of \(pack.workflowID) to \(out) (head \(pack.head))")
                }
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a pack's hash chain: exit 0 if it is as exported, 1 naming the first record that is not.")
        @Argument(help: "The pack's file.") var file: String

        func run() async throws {
            try await reportingErrors {
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw KeelError(.invalidArgument, "cannot read \(file)")
                }
                do {
                    let pack = try EvidencePack.verify(data)
                    printLine(
                        "\(file): \(pack.records.count) records of \(pack.workflowID) verified (head \(pack.head))")
                } catch let error as EvidenceError {
                    printError("\(file): \(error)")
                    throw ExitCode(1)
                }
            }
        }
    }
}
