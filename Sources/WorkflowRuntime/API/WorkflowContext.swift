import Foundation
import Logging

/// What workflow code uses for everything that is not deterministic: activities, time, timers,
/// signals, randomness and side effects. Each call is recorded in the run's history, so a replay
/// of the same code returns the same results.
///
/// ```swift
/// let draft = try await context.execute(DraftEmail.self, lead, options: .init(startToCloseTimeout: .seconds(30)))
/// try await context.sleep(for: .seconds(86_400 * 2))
/// let reply = try await context.waitForSignal("reply", as: Reply.self, timeout: .seconds(3600))
/// ```
///
/// Use it only from the workflow's own code (including its `async let` and task-group children).
public final class WorkflowContext: @unchecked Sendable {
    private unowned let execution: WorkflowExecution

    init(execution: WorkflowExecution) {
        self.execution = execution
    }

    /// The run's identity.
    public var info: WorkflowInfo { execution.info }

    /// Workflow time: the time of the latest event the code has seen (deterministic on replay).
    public var now: Date { execution.now }

    /// Whether the code is being replayed from history (its effects already happened once).
    public var isReplaying: Bool { execution.isReplaying }

    /// Whether cancellation of the run has been requested. Operations then throw ``WorkflowCancelledError``.
    public var isCancellationRequested: Bool { execution.isCancellationRequested }

    /// Number of events in the run's history so far; past a few thousand, prefer continue-as-new.
    public var historyLength: Int { execution.historyLength }

    /// A logger for workflow code, with the run's ids as metadata. It stays silent while the code
    /// is being replayed, so each line is logged once.
    public var logger: Logger { execution.logger }

    /// A random number generator seeded by the run: the same numbers on every replay.
    public var random: WorkflowRandom { execution.random }

    /// A random UUID that is the same on every replay.
    public func uuid() -> UUID { execution.random.uuid() }

    /// Runs an activity durably and returns its output.
    ///
    /// The activity is scheduled with a stable idempotency key and retried according to
    /// `options.retryPolicy`. - Throws: ``ActivityFailure`` when it fails for good,
    /// ``WorkflowCancelledError`` when the run is cancelled, ``InvalidValueError`` (before anything
    /// is scheduled) when `options` are invalid (see ``ActivityOptions/validate()``).
    public func execute<A: Activity>(_ activity: A.Type, _ input: A.Input, options: ActivityOptions = ActivityOptions())
        async throws -> A.Output
    {
        let payload = try Payload.encode(input)
        let result = try await execution.executeActivity(name: A.name, input: payload, options: options)
        do { return try result.decode(as: A.Output.self) } catch {
            try await execution.failTask("cannot decode the result of activity '\(A.name)': \(error)")
        }
    }

    /// Sleeps durably: a timer row survives crashes and fires once.
    /// - Throws: ``InvalidValueError`` for a duration beyond ``Duration/longestAccepted``.
    public func sleep(for duration: Duration) async throws {
        try await execution.sleep(seconds: duration.seconds)
    }

    /// Sleeps durably until workflow time reaches `date` (at once if it has).
    /// - Throws: ``InvalidValueError`` for a date more than ``Duration/longestAccepted`` ahead.
    public func sleep(until date: Date) async throws {
        try await execution.sleep(seconds: date.timeIntervalSince(now))
    }

    /// Waits for the next signal called `name` and decodes its payload. Signals that arrived
    /// before the wait are buffered and delivered in order.
    public func waitForSignal<T: Decodable>(_ name: String, as type: T.Type = T.self) async throws -> T {
        let signal = try await execution.waitForSignal(named: [name], timeout: nil)!
        return try signal.decode(as: T.self)
    }

    /// Waits for the next signal called `name`, at most `timeout` of workflow time.
    /// - Returns: the decoded payload, or `nil` if the timeout passed first.
    public func waitForSignal<T: Decodable>(_ name: String, as type: T.Type = T.self, timeout: Duration) async throws
        -> T?
    {
        guard let signal = try await execution.waitForSignal(named: [name], timeout: timeout) else { return nil }
        return try signal.decode(as: T.self)
    }

    /// Waits for the next signal called any of `names`: the one that arrived first, if several
    /// wait; the others stay for later waits.
    ///
    /// ```swift
    /// let signal = try await context.waitForSignal(anyOf: ["add", "stop"])
    /// if signal.name == "add" { total += try signal.decode(as: Int.self) }
    /// ```
    public func waitForSignal(anyOf names: [String]) async throws -> ReceivedSignal {
        if names.isEmpty { try await execution.failTask("waitForSignal(anyOf:) needs at least one signal name") }
        return try await execution.waitForSignal(named: names, timeout: nil)!
    }

    /// Waits for the next signal called any of `names`, at most `timeout` of workflow time.
    /// - Returns: the signal, or `nil` if the timeout passed first.
    public func waitForSignal(anyOf names: [String], timeout: Duration) async throws -> ReceivedSignal? {
        if names.isEmpty { try await execution.failTask("waitForSignal(anyOf:) needs at least one signal name") }
        return try await execution.waitForSignal(named: names, timeout: timeout)
    }

    // MARK: Continue-as-new

    /// Ends this run and starts the next run of the same workflow id with `input`, in one
    /// transaction: a workflow that lives for months (an entity driven by signals) keeps its
    /// history short this way. The signals this run received and did not consume move to the next
    /// run, in order, and keep their request ids; none is lost or delivered twice. Compensations
    /// registered in this run are dropped (continuing is not a failure). If a signal arrives while
    /// the task commits, the commit is refused and the task runs again, seeing it.
    ///
    /// ```swift
    /// if received == 100 { try await context.continueAsNew(input: State(total: total)) }
    /// ```
    /// Call it from the workflow's own task and let what it throws propagate: it never returns.
    /// - Throws: always; ``WorkflowCancelledError`` instead when the run is cancelled.
    public func continueAsNew<I: Encodable>(input: I) async throws -> Never {
        try await execution.continueAsNew(input: try Payload.encode(input))
    }

    /// Runs `body` once and records its result; replays return the recorded result without running it.
    public func sideEffect<T: Codable & Sendable>(_ body: () throws -> T) async throws -> T {
        let payload = try await execution.sideEffect(named: "sideEffect") { try Payload.encode(try body()) }
        return try payload.decode(as: T.self)
    }

    // MARK: Versioning

    /// The version runs take of a change that was never versioned: runs that passed this point
    /// before the `version(...)` call was added.
    public static let defaultVersion = 0

    /// Which branch of a changed piece of code this run takes, so code can change under runs that
    /// are already part-way through it:
    ///
    /// ```swift
    /// if try await context.version("send-sms-first", minSupported: 0, maxSupported: 1) == 1 {
    ///     try await context.execute(SendSMS.self, lead)        // the new code
    /// } else {
    ///     try await context.execute(SendEmail.self, lead)      // what older runs did here
    /// }
    /// ```
    ///
    /// A new run records `maxSupported` and takes the newest branch; a run that recorded a version
    /// keeps it on every replay; a run that passed this point before the call existed gets
    /// ``defaultVersion``. Raise `minSupported` once no open run needs an old branch: a run whose
    /// version the code no longer supports is blocked — never corrupted — with a message naming
    /// the change and both versions (`worker replay` reports it before a deploy, exit code 6).
    /// - Throws: ``InvalidValueError`` for an empty change id or `minSupported > maxSupported`.
    public func version(_ changeID: String, minSupported: Int, maxSupported: Int) async throws -> Int {
        if changeID.isEmpty {
            throw InvalidValueError(name: "changeID", value: "\"\"", requirement: "a non-empty change id")
        }
        guard minSupported <= maxSupported else {
            throw InvalidValueError(
                name: "version range", value: "\(minSupported)...\(maxSupported)",
                requirement: "minSupported <= maxSupported")
        }
        return try await execution.version(changeID: changeID, minSupported: minSupported, maxSupported: maxSupported)
    }

    // MARK: Approvals

    /// Asks a person to decide, and waits for the decision or the deadline.
    ///
    /// The request is recorded with the exact `payload` the approver sees and its SHA-256; a decision
    /// binds to both. On expiry the decision's outcome is ``ApprovalDecision/Outcome/expired``: the
    /// workflow chooses what that means (ask someone else, or treat it as a rejection).
    ///
    /// ```swift
    /// let decision = try await context.requestApproval(
    ///     "manager-approval", summary: "Partner Acme, fit 82", payload: terms,
    ///     approvers: ["role:sales-manager"], timeout: .seconds(3 * 86_400))
    /// ```
    /// - Parameter approvers: names, or roles written `role:NAME`; empty lets anyone decide.
    public func requestApproval<P: Encodable>(
        _ name: String, summary: String, payload: P, approvers: [String] = [],
        timeout: Duration
    ) async throws -> ApprovalDecision {
        try await startApproval(name, summary: summary, payload: payload, approvers: approvers, timeout: timeout)
            .decision()
    }

    /// Records an approval request and returns at once; wait for it later with
    /// ``PendingApproval/decision()`` (a decision made meanwhile is kept).
    /// - Throws: ``InvalidValueError`` for a timeout that is not above zero or exceeds ``Duration/longestAccepted``.
    public func startApproval<P: Encodable>(
        _ name: String, summary: String, payload: P, approvers: [String] = [],
        timeout: Duration
    ) async throws -> PendingApproval {
        if name.isEmpty { try await execution.failTask("requestApproval needs a name") }
        let encoded = try Payload.encode(payload)
        let (seq, request) = try await execution.startApproval(
            name: name, summary: summary, payload: encoded,
            approvers: approvers, timeout: timeout)
        return PendingApproval(request: request, seq: seq, context: self)
    }

    func decision(of approval: PendingApproval) async throws -> ApprovalDecision {
        try await execution.decision(ofApprovalAt: approval.seq)
    }

    // MARK: Other workflows

    /// Sends a signal to the open run of another workflow, once: it is delivered in the same
    /// transaction that records this call in the run's history, so a crash or a replay never
    /// sends it twice. The target's history shows it with request id `SENDER-RUN-ID/SEQ`.
    /// - Returns: the id of the run that received it.
    /// - Throws: ``ExternalWorkflowError`` when no workflow has that id, its latest run is closed,
    ///   or it is this run's own workflow; ``WorkflowCancelledError`` when this run is cancelled.
    @discardableResult
    public func signalExternal<P: Encodable>(workflowID: String, signal name: String, payload: P) async throws
        -> String
    {
        if workflowID.isEmpty { try await execution.failTask("signalExternal needs a workflow id") }
        if name.isEmpty { try await execution.failTask("signalExternal needs a signal name") }
        return try await execution.signalExternal(
            workflowID: workflowID, name: name, payload: try Payload.encode(payload))
    }

    /// Sends a signal with an empty payload (`{}`) to the open run of another workflow.
    @discardableResult
    public func signalExternal(workflowID: String, signal name: String) async throws -> String {
        try await signalExternal(workflowID: workflowID, signal: name, payload: Empty())
    }

    /// Requests cancellation of the open run of another workflow, once (as
    /// ``signalExternal(workflowID:signal:payload:)``);
    /// the target's code sees ``WorkflowCancelledError`` and decides how to end.
    /// - Returns: the id of the run that received the request.
    /// - Throws: ``ExternalWorkflowError`` as ``signalExternal(workflowID:signal:payload:)`` does.
    @discardableResult
    public func cancelExternal(workflowID: String, reason: String? = nil) async throws -> String {
        if workflowID.isEmpty { try await execution.failTask("cancelExternal needs a workflow id") }
        return try await execution.cancelExternal(workflowID: workflowID, reason: reason)
    }

    // MARK: Stage and search attributes

    /// Sets the run's stage — where a long process stands (`"negotiating"`, `"legal-review"`) —
    /// recorded in history and indexed: `worker list --stage negotiating`, ``RunQuery/stage``,
    /// and `worker show`. A run continued as new keeps its stage until it sets another.
    /// - Throws: ``InvalidValueError`` for an empty stage or one holding control characters.
    public func setStage(_ stage: String) async throws {
        try checkName(stage, "stage")
        try await execution.setStage(stage)
    }

    /// Sets typed search attributes the run is listed by (`worker list --attr region=apac`,
    /// ``RunQuery/searchAttributes``); a name set again takes the new value, an empty keyword list
    /// removes it. Recorded in history; a run continued as new keeps them.
    ///
    /// ```swift
    /// try await context.upsertSearchAttributes(["region": .keywords(["apac"]), "dealSize": .int(250_000)])
    /// ```
    /// - Throws: ``InvalidValueError`` for more than 64 attributes, a name or text value that is
    ///   empty or holds control characters, a NaN or infinite double, more than 100 keywords.
    public func upsertSearchAttributes(_ attributes: [String: SearchAttributeValue]) async throws {
        if attributes.count > SearchAttributeValue.maximumAttributes {
            throw InvalidValueError(
                name: "search attributes", value: "\(attributes.count)",
                requirement: "at most \(SearchAttributeValue.maximumAttributes) per call")
        }
        for (name, value) in attributes.sorted(by: { $0.key < $1.key }) {
            try checkName(name, "search attribute name")
            do { try value.validate(name: name) } catch let error as KeelError {
                throw InvalidValueError(
                    name: "search attribute '\(name)'", value: value.text, requirement: error.message)
            }
        }
        try await execution.upsertSearchAttributes(attributes)
    }

    // MARK: Child workflows

    /// Starts a child workflow and returns once it has started; wait for its result with
    /// ``ChildWorkflowHandle/result()``. The child starts in the transaction that records this
    /// call, so a parent that crashes or replays never starts it twice.
    ///
    /// ```swift
    /// let legal = try await context.startChild(Workstream.self, input: .init(area: "legal"))
    /// let findings = try await legal.result()
    /// ```
    /// - Parameters:
    ///   - id: the child's workflow id; by default `PARENT-ID/PARENT-RUN/SEQ`, stable on replay.
    ///   - options: its task queue (the parent's by default) and what happens to it if the
    ///     parent closes first (``ParentClosePolicy``, `terminate` by default).
    /// - Throws: ``ChildWorkflowStartError`` when the id has an open run that is not this child;
    ///   ``InvalidValueError`` for an id or queue name that is empty or holds control characters.
    public func startChild<W: Workflow>(
        _ workflow: W.Type, id: String? = nil, input: W.Input, options: ChildWorkflowOptions = ChildWorkflowOptions()
    ) async throws -> ChildWorkflowHandle<W> {
        if let id { try checkName(id, "child workflow id") }
        if let queue = options.taskQueue { try checkName(queue, "child task queue") }
        let started = try await execution.startChild(
            workflowType: W.name, workflowID: id, input: try Payload.encode(input), options: options)
        return ChildWorkflowHandle(
            workflowID: started.workflowID, runID: started.runID, seq: started.seq, context: self)
    }

    /// Starts a child workflow and waits for its result (``startChild(_:id:input:options:)``, then
    /// ``ChildWorkflowHandle/result()``).
    public func executeChild<W: Workflow>(
        _ workflow: W.Type, id: String? = nil, input: W.Input, options: ChildWorkflowOptions = ChildWorkflowOptions()
    ) async throws -> W.Output {
        try await startChild(workflow, id: id, input: input, options: options).result()
    }

    func childResult<W: Workflow>(of handle: ChildWorkflowHandle<W>) async throws -> W.Output {
        let payload = try await execution.childResult(
            seq: handle.seq, workflowType: W.name, workflowID: handle.workflowID)
        do { return try payload.decode(as: W.Output.self) } catch {
            try await execution.failTask("cannot decode the result of child workflow '\(W.name)': \(error)")
        }
    }

    private func checkName(_ value: String, _ name: String) throws {
        do { try NameRules.check(value, as: "the \(name)") } catch let error as KeelError {
            throw InvalidValueError(name: name, value: "'\(value)'", requirement: error.message)
        }
    }

    // MARK: Compensation

    /// Registers the activity that undoes a step (saga). When the workflow's code then throws —
    /// a failure, a cancellation, a rejection it turns into an error — the registered compensations
    /// run in reverse order of registration, each durably with retries and its own idempotency key,
    /// shielded from the run's cancellation; the run then closes as `compensated`. A compensation
    /// that fails for good parks the run as `compensationFailed` until an operator retries it
    /// (`worker retry ID`).
    ///
    /// Register *before* a step whose outcome may be unknown (a timeout after the side effect may
    /// have happened): compensations must tolerate "nothing to undo".
    /// - Throws: ``InvalidValueError`` if `options` are invalid (see ``ActivityOptions/validate()``).
    public func addCompensation<A: Activity>(
        _ activity: A.Type, _ input: A.Input, options: ActivityOptions = ActivityOptions()
    ) throws {
        try execution.addCompensation(activity: A.name, input: try Payload.encode(input), options: options)
    }

    // MARK: Concurrency

    /// Runs `body` for every item concurrently (on the run's executor, so deterministically) and
    /// returns the results in the items' order. Every branch runs to its end; if any failed, the
    /// error of the first failing item (in the items' order) is thrown.
    public func parallel<Item: Sendable, Output: Sendable>(
        _ items: [Item], _ body: @escaping @Sendable (Item) async throws -> Output
    ) async throws -> [Output] {
        let outcomes = await withTaskGroup(of: (Int, Result<Output, any Error>).self) { group in
            for (index, item) in items.enumerated() {
                group.addTask {
                    do { return (index, .success(try await body(item))) } catch { return (index, .failure(error)) }
                }
            }
            var outcomes = [Result<Output, any Error>?](repeating: nil, count: items.count)
            for await (index, outcome) in group { outcomes[index] = outcome }
            return outcomes
        }
        return try outcomes.map { try $0!.get() }
    }

}

/// A signal received by ``WorkflowContext/waitForSignal(anyOf:)``.
public struct ReceivedSignal: Sendable, Hashable {
    public var name: String
    public var payload: Payload

    public init(name: String, payload: Payload) {
        self.name = name
        self.payload = payload
    }

    /// The payload decoded as `T`.
    /// - Throws: ``ApplicationError`` of type `SignalPayloadDecoding` (non-retryable) when it does not decode.
    public func decode<T: Decodable>(as type: T.Type = T.self) throws -> T {
        do { return try payload.decode(as: T.self) } catch {
            throw ApplicationError(
                "signal '\(name)' payload does not decode as \(T.self): \(error)",
                type: "SignalPayloadDecoding", nonRetryable: true)
        }
    }
}
