import Foundation
import WorkflowRuntime

/// A JSON value given to an option (`--input`, `--payload`): inline text, `@PATH` for a file's
/// contents, or `-` for standard input. Neither form is valid JSON text, so nothing is ambiguous;
/// the files let inputs exceed what a command line carries (about 128 KB on Linux).
enum JSONArgument {
    /// Reads at most this many bytes; the client refuses payloads above its limit with the size.
    static let readLimit = 64 * 1024 * 1024

    /// The payload the argument designates (not yet validated as JSON: the client does that).
    /// - Throws: ``KeelError`` `.invalidArgument` naming the option and the file that cannot be read.
    static func payload(_ argument: String, option: String) throws -> Payload {
        if argument == "-" {
            return Payload(data: try read(FileHandle.standardInput, what: "standard input", option: option))
        }
        guard argument.hasPrefix("@") else { return Payload(json: argument) }
        let path = String(argument.dropFirst())
        guard !path.isEmpty else { throw KeelError(.invalidArgument, "\(option) @PATH needs a file path after '@'") }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw KeelError(
                .invalidArgument, "\(option): cannot read the file '\(path)' (missing, a directory, or not readable)")
        }
        defer { try? handle.close() }
        return Payload(data: try read(handle, what: "the file '\(path)'", option: option))
    }

    private static func read(_ handle: FileHandle, what: String, option: String) throws -> Data {
        do {
            let data = try handle.read(upToCount: readLimit + 1) ?? Data()
            guard data.count <= readLimit else {
                throw KeelError(.invalidArgument, "\(option): \(what) holds more than \(readLimit) bytes")
            }
            return data
        } catch let error as KeelError {
            throw error
        } catch {
            throw KeelError(.invalidArgument, "\(option): cannot read \(what): \(error.localizedDescription)")
        }
    }
}
