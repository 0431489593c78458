/// The workflows and activities a worker can run, and a client can start, by name.
///
/// ```swift
/// var registry = WorkflowRegistry()
/// registry.register(Greeting.self)
/// registry.register(SendEmail(provider: smtp))
/// ```
public struct WorkflowRegistry: Sendable {
    private(set) var workflows: [String: WorkflowDefinition] = [:]
    private(set) var activities: [String: ActivityDefinition] = [:]

    public init() {}

    /// Registers a workflow type under its ``Workflow/name``. A later registration of the same name replaces it.
    public mutating func register<W: Workflow>(_ type: W.Type) {
        workflows[W.name] = WorkflowDefinition(type)
    }

    /// Registers an activity instance under its ``Activity/name``.
    public mutating func register<A: Activity>(_ activity: A) {
        activities[A.name] = ActivityDefinition(activity)
    }

    /// The names of the registered workflow types, sorted.
    public var workflowTypes: [String] { workflows.keys.sorted() }

    /// The names of the registered activities, sorted.
    public var activityNames: [String] { activities.keys.sorted() }

    /// The definition of a workflow type, or an ``KeelError`` `.unknownWorkflowType` listing the known ones.
    func workflow(named name: String) throws -> WorkflowDefinition {
        guard let definition = workflows[name] else {
            let known = workflowTypes.isEmpty ? "none registered" : workflowTypes.joined(separator: ", ")
            throw KeelError(.unknownWorkflowType, "unknown workflow type '\(name)' (known types: \(known))")
        }
        return definition
    }

    func activity(named name: String) -> ActivityDefinition? { activities[name] }

    /// Checks that `input` is valid JSON and decodes as the input of workflow type `name`.
    public func validateStart(workflowType name: String, input: Payload) throws {
        let definition = try workflow(named: name)
        try input.validateJSON()
        try definition.validateInput(input)
    }
}

/// A registered workflow type with its payloads erased.
struct WorkflowDefinition: Sendable {
    let name: String
    let validateInput: @Sendable (Payload) throws -> Void
    let run: @Sendable (WorkflowContext, Payload) async throws -> Payload

    init<W: Workflow>(_ type: W.Type) {
        name = W.name
        validateInput = { payload in
            do { _ = try payload.decode(as: W.Input.self) } catch let error as KeelError {
                throw KeelError(
                    .malformedInput,
                    "input for workflow '\(W.name)' does not match \(String(reflecting: W.Input.self)): "
                        + "\(error.message)"
                )
            }
        }
        run = { context, payload in
            let input: W.Input
            do { input = try payload.decode(as: W.Input.self) } catch {
                throw WorkflowTaskFailure(message: "cannot decode the input of workflow '\(W.name)': \(error)")
            }
            let output = try await W().run(context: context, input: input)
            return try Payload.encode(output)
        }
    }
}

/// A registered activity with its payloads erased.
struct ActivityDefinition: Sendable {
    let name: String
    let run: @Sendable (ActivityContext, Payload) async throws -> Payload

    init<A: Activity>(_ activity: A) {
        name = A.name
        run = { context, payload in
            let input: A.Input
            do { input = try payload.decode(as: A.Input.self) } catch let error as KeelError {
                throw ApplicationError(error.message, type: "KeelError.payloadDecoding", nonRetryable: true)
            }
            return try Payload.encode(try await activity.run(context: context, input: input))
        }
    }
}

/// A failure of a workflow task rather than of the workflow: the run stays open, blocked, until
/// the code is fixed (an undecodable payload, a non-determinism).
package struct WorkflowTaskFailure: Error, Sendable, CustomStringConvertible {
    var message: String
    package var description: String { message }
}
