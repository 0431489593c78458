/// An error raised by Keel itself, with a code a program can match and a message a person can act on.
///
/// ```swift
/// do { try await client.signal(workflowID: "order-1", name: "go") }
/// catch let error as KeelError where error.code == .workflowClosed { ... }
/// ```
public struct KeelError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, as a stable code.
    public enum Code: String, Sendable, Codable {
        case unknownWorkflowType
        case malformedInput
        case payloadEncoding
        case payloadDecoding
        case workflowNotFound
        case workflowClosed
        /// The run is not in the state the operation needs (e.g. a compensation retry of a run whose compensation did
        /// not fail).
        case invalidState
        case approvalNotFound
        /// A decision that does not bind to its request: stale, already decided, wrong payload hash, or a decider not
        /// allowed.
        case approvalRefused
        case invalidArgument
        /// A signal's request id that already carried a different signal (name or payload).
        case requestIDReused
        /// A start refused by its ``WorkflowIDReusePolicy``: the id already ran.
        case workflowIDReused
        case scheduleNotFound
        /// A schedule with that id exists already.
        case scheduleExists
        case invalidDatabaseURL
        case databaseUnreachable
        /// The database's schema is older than this version: run `worker migrate`.
        case notMigrated
        case storage
        case nonDeterminism
        case timeout
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
