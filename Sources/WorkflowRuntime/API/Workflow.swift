/// A durable workflow: ordinary `async` Swift code that orchestrates activities, timers and signals.
///
/// Everything non-deterministic goes through the ``WorkflowContext`` so that the run can be
/// replayed from its history after a crash or on another worker.
///
/// ```swift
/// struct Greeting: Workflow {
///     static let name = "greeting"
///     func run(context: WorkflowContext, input: String) async throws -> String {
///         try await context.sleep(for: .seconds(60))
///         return try await context.execute(SendEmail.self, "Hello \(input)")
///     }
/// }
/// ```
///
/// Workflow code must not use `Task.detached`, `Task.sleep`, actors, I/O, `Date()` or random
/// numbers directly: use the context's durable equivalents. `async let` and task groups are fine —
/// they run on the run's own serial executor.
public protocol Workflow: Sendable {
    associatedtype Input: Codable & Sendable
    associatedtype Output: Codable & Sendable

    /// The stable type name stored with every run. Never change it once runs exist.
    static var name: String { get }

    init()

    func run(context: WorkflowContext, input: Input) async throws -> Output
}

/// A side-effecting step called by workflows: an HTTP call, a database write, an e-mail.
///
/// Activities run at least once; each invocation carries an ``ActivityContext/idempotencyKey``
/// that stays the same across retries, crashes and replays, so external effects happen once.
///
/// ```swift
/// struct SendEmail: Activity {
///     static let name = "email.send"
///     let provider: EmailProvider
///     func run(context: ActivityContext, input: String) async throws -> String {
///         try await provider.send(input, idempotencyKey: context.idempotencyKey)
///     }
/// }
/// ```
public protocol Activity: Sendable {
    associatedtype Input: Codable & Sendable
    associatedtype Output: Codable & Sendable

    /// The stable name recorded in history; workflows refer to the activity by it.
    static var name: String { get }

    func run(context: ActivityContext, input: Input) async throws -> Output
}

/// An empty input or output for workflows and activities that need none.
public struct Empty: Codable, Sendable, Hashable {
    public init() {}
}
