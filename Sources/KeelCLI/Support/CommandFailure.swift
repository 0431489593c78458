import ArgumentParser
import Foundation
import WorkflowRuntime

/// Runs a command body, turning errors into a message on stderr and a meaningful exit code.
package func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as KeelError {
        printError(error.message)
        throw ExitCode(exitCode(for: error.code))
    } catch let error as InvalidValueError {
        printError(error.description)
        throw ExitCode(exitCode(for: .invalidArgument))
    } catch let error as WorkflowRunError {
        printError(error.description)
        throw ExitCode(1)
    } catch {
        printError("\(error)")
        throw ExitCode(1)
    }
}

func exitCode(for code: KeelError.Code) -> Int32 {
    switch code {
    case .unknownWorkflowType, .malformedInput, .payloadEncoding, .payloadDecoding,
        .invalidArgument, .invalidDatabaseURL, .requestIDReused:
        2
    case .workflowNotFound, .approvalNotFound, .scheduleNotFound: 3
    case .workflowClosed, .invalidState, .workflowIDReused, .scheduleExists: 4
    case .databaseUnreachable, .storage: 5
    case .nonDeterminism: 6
    case .timeout: 1
    case .approvalRefused: 7
    case .notMigrated: 8
    }
}

package func printError(_ message: String) {
    FileHandle.standardError.write(Data("error: \(NameRules.escapingControls(message))\n".utf8))
}

/// Prints one line of a command's report on stdout, control characters escaped (ids and names
/// echoed from the command line or the database never act on the terminal).
package func printLine(_ text: String) {
    print(NameRules.escapingControls(text))
}

/// Prints a value as pretty JSON on stdout: dates as ISO-8601 text, payloads (inputs, results,
/// signal and approval payloads) as the JSON values they hold, so a script can index them.
package func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.dateEncodingStrategy = .iso8601
    let embedding = PayloadEmbedding()
    encoder.userInfo[.payloadEmbedding] = embedding
    print(embedding.embed(into: String(decoding: try encoder.encode(value), as: UTF8.self)))
}
