import Foundation

/// Starts, signals, cancels, terminates and inspects workflows — from the CLI, a web handler or a test.
///
/// ```swift
/// let client = WorkflowClient(database: try .sqlite(path: "keel.sqlite"), registry: registry)
/// let handle = try await client.start(Greeting.self, id: "greet-ada", input: "Ada")
/// try await client.signal(workflowID: handle.workflowID, name: "go")
/// let greeting = try await client.result(of: handle, as: Greeting.self)
/// ```
///
/// Every call returns only after its change is committed.
public struct WorkflowClient: Sendable {
    package let store: any WorkflowStore
    /// When set, `start` checks the type name and decodes the input before anything is written.
    public let registry: WorkflowRegistry?
    public let clock: any WorkflowClock
    /// Inputs and signal payloads above this size are refused.
    public var maximumPayloadBytes = 2 * 1024 * 1024
    /// How often waits re-read a run written by another process.
    public var pollInterval: Duration = .milliseconds(100)
    /// A worker in this process that runs new runs' first tasks as part of their start (eager
    /// start: one commit instead of three, and no wait for a poll). Optional.
    public var localWorker: Worker?

    /// A client of `database`.
    public init(database: WorkflowDatabase, registry: WorkflowRegistry? = nil, clock: any WorkflowClock = SystemClock())
    {
        self.init(store: database.store, registry: registry, clock: clock)
    }

    package init(store: any WorkflowStore, registry: WorkflowRegistry? = nil, clock: any WorkflowClock = SystemClock())
    {
        self.store = store
        self.registry = registry
        self.clock = clock
    }

    /// Starts a workflow; if a run of `id` is open, returns it instead (``WorkflowHandle/created`` is `false`).
    /// - Parameters:
    ///   - taskQueue: the queue of the run's workflow tasks and, unless their options name
    ///     another, of its activities (see ``TaskQueue``).
    ///   - idReusePolicy: whether an id that already ran may start again (see ``WorkflowIDReusePolicy``).
    /// - Throws: ``KeelError`` `.workflowIDReused` when the policy refuses, and as
    ///   ``start(workflowType:id:input:taskQueue:idReusePolicy:)``.
    @discardableResult
    public func start<W: Workflow>(
        _ workflow: W.Type, id: String, input: W.Input,
        taskQueue: String = TaskQueue.default, idReusePolicy: WorkflowIDReusePolicy = .allowDuplicate
    ) async throws -> WorkflowHandle {
        try await start(
            workflowType: W.name, id: id, input: try Payload.encode(input), taskQueue: taskQueue,
            idReusePolicy: idReusePolicy)
    }

    /// Starts a workflow by type name with a JSON input.
    /// - Throws: ``KeelError`` `.unknownWorkflowType`, `.malformedInput`, `.invalidArgument` (an
    ///   id that is empty, only whitespace or holds control characters, see ``NameRules``),
    ///   `.workflowIDReused` (the id reuse policy refuses a new run).
    @discardableResult
    public func start(
        workflowType: String, id: String, input: Payload, taskQueue: String = TaskQueue.default,
        idReusePolicy: WorkflowIDReusePolicy = .allowDuplicate
    ) async throws -> WorkflowHandle {
        let request = try startRequest(
            workflowType: workflowType, id: id, input: input, taskQueue: taskQueue, idReusePolicy: idReusePolicy)
        let result: StartWorkflowResult
        if let localWorker, let eager = try await localWorker.startLocally(request) {
            result = eager
        } else {
            result = try await store.startWorkflow(request)
        }
        return WorkflowHandle(workflowID: id, runID: result.runID, created: result.created)
    }

    /// Sends a signal to the open run of `id`, starting the run first when none is open — in one
    /// transaction, so a new run's code receives the signal before anything else (an e-signature
    /// webhook that may arrive before its workflow exists). Starting follows `idReusePolicy`;
    /// `requestID` deduplicates as in ``signal(workflowID:name:payload:requestID:)``.
    /// - Returns: the run (``WorkflowHandle/created`` says whether this call started it) and
    ///   whether the signal was delivered or a duplicate.
    /// - Throws: as ``start(workflowType:id:input:taskQueue:idReusePolicy:)`` and
    ///   ``signal(workflowID:name:payload:requestID:)``.
    @discardableResult
    public func signalWithStart(
        workflowType: String, id: String, input: Payload, signal name: String, payload: Payload = .emptyObject,
        requestID: String? = nil, taskQueue: String = TaskQueue.default,
        idReusePolicy: WorkflowIDReusePolicy = .allowDuplicate
    ) async throws -> (handle: WorkflowHandle, signal: SignalOutcome) {
        let start = try startRequest(
            workflowType: workflowType, id: id, input: input, taskQueue: taskQueue, idReusePolicy: idReusePolicy)
        let signal = try signalRequest(workflowID: id, name: name, payload: payload, requestID: requestID)
        let result = try await store.signalWithStart(start, signal: signal)
        return (WorkflowHandle(workflowID: id, runID: result.start.runID, created: result.start.created), result.signal)
    }

    /// ``signalWithStart(workflowType:id:input:signal:payload:requestID:taskQueue:idReusePolicy:)``
    /// with typed input and payload.
    @discardableResult
    public func signalWithStart<W: Workflow, P: Encodable>(
        _ workflow: W.Type, id: String, input: W.Input, signal name: String, value: P, requestID: String? = nil,
        taskQueue: String = TaskQueue.default, idReusePolicy: WorkflowIDReusePolicy = .allowDuplicate
    ) async throws -> (handle: WorkflowHandle, signal: SignalOutcome) {
        try await signalWithStart(
            workflowType: W.name, id: id, input: try Payload.encode(input), signal: name,
            payload: try Payload.encode(value), requestID: requestID, taskQueue: taskQueue,
            idReusePolicy: idReusePolicy)
    }

    private func startRequest(
        workflowType: String, id: String, input: Payload, taskQueue: String, idReusePolicy: WorkflowIDReusePolicy
    ) throws -> StartWorkflowRequest {
        try NameRules.check(id, as: "the workflow id")
        try NameRules.check(workflowType, as: "the workflow type")
        try NameRules.check(taskQueue, as: "the task queue name")
        try checkSize(input, of: "input")
        if let registry {
            try registry.validateStart(workflowType: workflowType, input: input)
        } else {
            try input.validateJSON()
        }
        return StartWorkflowRequest(
            workflowID: id, workflowType: workflowType, input: input, now: clock.now(), taskQueue: taskQueue,
            idReusePolicy: idReusePolicy)
    }

    private func signalRequest(workflowID: String, name: String, payload: Payload, requestID: String?) throws
        -> SignalRequest
    {
        try NameRules.check(name, as: "the signal name")
        if let requestID { try NameRules.check(requestID, as: "the signal's request id") }
        try checkSize(payload, of: "signal payload")
        try payload.validateJSON()
        return SignalRequest(
            workflowID: workflowID, name: name, payload: payload, requestID: requestID, now: clock.now())
    }

    /// Sends a signal; it is stored before this returns and delivered in order.
    /// - Parameter requestID: a retry with the same id (and the same name and payload bytes) is
    ///   acknowledged as ``SignalOutcome/duplicate(runID:)`` without a second delivery.
    /// - Throws: ``KeelError`` `.requestIDReused` when the id already carried a different signal
    ///   to this run (nothing is written), `.workflowClosed`, `.workflowNotFound`, `.invalidArgument`.
    @discardableResult
    public func signal(workflowID: String, name: String, payload: Payload = .emptyObject, requestID: String? = nil)
        async throws -> SignalOutcome
    {
        try await store.signal(
            signalRequest(workflowID: workflowID, name: name, payload: payload, requestID: requestID))
    }

    /// Sends a signal with an encodable payload.
    @discardableResult
    public func signal<T: Encodable>(workflowID: String, name: String, value: T, requestID: String? = nil) async throws
        -> SignalOutcome
    {
        try await signal(workflowID: workflowID, name: name, payload: try Payload.encode(value), requestID: requestID)
    }

    /// Asks the open run to stop: its code sees ``WorkflowCancelledError``.
    public func cancel(workflowID: String, reason: String? = nil) async throws {
        _ = try await store.requestCancellation(workflowID: workflowID, reason: reason, now: clock.now())
    }

    /// Closes the open run at once, recording `reason`.
    public func terminate(workflowID: String, reason: String) async throws {
        guard !reason.isEmpty else { throw KeelError(.invalidArgument, "a termination needs a reason") }
        _ = try await store.terminate(workflowID: workflowID, reason: reason, now: clock.now())
    }

    /// Asks a run whose compensation failed (status `compensationFailed`) to retry it.
    /// - Throws: ``KeelError`` `.invalidState` if its compensation did not fail, `.workflowClosed`,
    /// `.workflowNotFound`.
    public func retryCompensation(workflowID: String, requestedBy: String? = nil) async throws {
        _ = try await store.retryCompensation(workflowID: workflowID, requestedBy: requestedBy, now: clock.now())
    }

    // MARK: Approvals

    /// Approves a pending request. The decision binds to the request: it is refused (and only
    /// audited) if the request is stale, already decided, past its deadline, about a payload whose
    /// SHA-256 does not start with `payloadHashPrefix`, or if `decider` may not decide it.
    /// - Parameters:
    ///   - decider: a person's name; a name written as a role (`role:NAME`), empty or holding
    ///     control characters is refused (`.invalidArgument`): roles are given in `role`.
    ///   - role: the role the decider acts in, matched against `role:NAME` approvers.
    ///   - origin: where the decision comes from, for the audit trail (e.g. `cli ada@laptop`).
    /// - Throws: ``KeelError`` `.approvalRefused`, `.approvalNotFound`, `.invalidArgument`.
    @discardableResult
    public func approve(
        _ approvalID: String, by decider: String, role: String? = nil, note: String? = nil,
        payloadHashPrefix: String? = nil, origin: String = "api"
    ) async throws -> ApprovalRecord {
        try await decide(
            approvalID, approve: true, by: decider, role: role, note: note, payloadHashPrefix: payloadHashPrefix,
            origin: origin)
    }

    /// Rejects a pending request, with a reason (same binding rules as
    /// ``approve(_:by:role:note:payloadHashPrefix:origin:)``).
    @discardableResult
    public func reject(
        _ approvalID: String, by decider: String, role: String? = nil, reason: String,
        payloadHashPrefix: String? = nil, origin: String = "api"
    ) async throws -> ApprovalRecord {
        guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw KeelError(.invalidArgument, "a rejection needs a reason")
        }
        return try await decide(
            approvalID, approve: false, by: decider, role: role, note: reason,
            payloadHashPrefix: payloadHashPrefix, origin: origin)
    }

    private func decide(
        _ approvalID: String, approve: Bool, by decider: String, role: String?, note: String?,
        payloadHashPrefix: String?, origin: String
    ) async throws -> ApprovalRecord {
        guard !approvalID.isEmpty else { throw KeelError(.invalidArgument, "the approval id must not be empty") }
        try NameRules.check(decider, as: "the decider's name (--by)")
        if decider.hasPrefix("role:") {
            throw KeelError(
                .invalidArgument,
                "the decider's name '\(decider)' is a role, not a person: decide as a person "
                    + "and give the role separately (--role \(decider.dropFirst("role:".count)))")
        }
        if let role { try NameRules.check(role, as: "the decider's role (--role)") }
        if let prefix = payloadHashPrefix, prefix.count < 6 || prefix.count > 64 || !prefix.allSatisfy(\.isHexDigit) {
            throw KeelError(.invalidArgument, "the payload hash prefix must be 6 to 64 hex digits, got '\(prefix)'")
        }
        return try await store.decideApproval(
            ApprovalDecisionRequest(
                approvalID: approvalID, approve: approve, decidedBy: decider, role: role, note: note,
                payloadHashPrefix: payloadHashPrefix, origin: origin, now: clock.now()))
    }

    /// Approval requests, newest first.
    public func approvals(_ query: ApprovalQuery = ApprovalQuery()) async throws -> [ApprovalRecord] {
        try await store.listApprovals(query)
    }

    /// An approval request and its audit trail (request, decisions accepted or refused, expiry, withdrawal).
    public func approval(_ approvalID: String) async throws -> (record: ApprovalRecord, audit: [ApprovalAuditEntry]) {
        guard let record = try await store.approval(id: approvalID) else {
            throw KeelError(.approvalNotFound, "no approval with id '\(approvalID)' (see `worker approvals`)")
        }
        return (record, try await store.approvalAudit(approvalID: approvalID))
    }

    // MARK: Inspection

    /// The run of `workflowID` (the open one, else the latest), its pending work, its approvals
    /// and, optionally, its history.
    public func describe(workflowID: String, includeHistory: Bool = false) async throws -> WorkflowDescription {
        guard let run = try await store.findRun(workflowID: workflowID) else {
            throw KeelError(.workflowNotFound, "no workflow with id '\(workflowID)'")
        }
        let pending = try await store.pendingWork(runID: run.runID)
        let approvals = try await store.listApprovals(ApprovalQuery(runID: run.runID, limit: 1000))
        let history = includeHistory ? try await store.history(runID: run.runID) : nil
        let previousRuns = try await store.listRuns(
            RunQuery(workflowID: workflowID, limit: 20, after: (run.createdAt, run.runID)))
        let children = try await store.listRuns(RunQuery(parentRunID: run.runID, limit: 100))
        return WorkflowDescription(
            run: run, pending: pending, approvals: approvals.sorted { $0.seq < $1.seq }, history: history,
            previousRuns: previousRuns, children: children,
            searchAttributes: try await store.searchAttributes(runID: run.runID))
    }

    /// Lists runs, newest first; pass the last run of a page as the next query's `after`.
    /// - Throws: ``KeelError`` `.invalidArgument` for a limit below 1 or a NaN or infinite double filter.
    public func list(_ query: RunQuery = RunQuery()) async throws -> [WorkflowRun] {
        guard query.limit > 0 else { throw KeelError(.invalidArgument, "the list limit must be positive") }
        for (name, value) in query.searchAttributes {
            if case .double(let number) = value, !number.isFinite {
                throw KeelError(.invalidArgument, "search attribute filter '\(name)' must be a finite number")
            }
        }
        return try await store.listRuns(query)
    }

    /// The kind of values runs store under search attribute `name`, or `nil` when none has it
    /// (what a text filter such as `worker list --attr NAME=VALUE` is parsed as).
    public func searchAttributeKind(named name: String) async throws -> String? {
        try await store.searchAttributeKind(named: name)
    }

    /// Waits until the run closes and returns it.
    /// - Throws: ``KeelError`` `.timeout` if `timeout` passes first.
    public func waitForClose(runID: String, timeout: Duration? = nil) async throws -> WorkflowRun {
        guard case .read(let run) = try await awaitClose(runID: runID, timeout: timeout, takesResult: false) else {
            preconditionFailure("a wait that takes no result returns the run it read")
        }
        return run
    }

    /// How a wait for a run's close ended.
    private enum Close {
        /// The closed run, as read.
        case read(WorkflowRun)
        /// The run completed with this result, handed over by this process's worker, which
        /// committed the close (``WorkNotifier/runClosed(_:result:)``): no read needed.
        case completed(Payload)
    }

    /// Waits until the run closes. - Parameter takesResult: whether a handed-over result will do.
    private func awaitClose(runID: String, timeout: Duration?, takesResult: Bool) async throws -> Close {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        while true {
            let ticket = store.notifier.closeTicket(for: runID)
            let run: WorkflowRun?
            do { run = try await store.run(runID: runID) } catch {
                store.notifier.discard(ticket)
                throw error
            }
            guard let run else {
                store.notifier.discard(ticket)
                throw KeelError(.workflowNotFound, "no run with id '\(runID)'")
            }
            if !run.status.isOpen {
                store.notifier.discard(ticket)
                return .read(run)
            }
            var wait = pollInterval
            if let deadline {
                let left = deadline - ContinuousClock.now
                if left <= .zero {
                    store.notifier.discard(ticket)
                    throw KeelError(.timeout, "workflow '\(run.workflowID)' is still \(run.status.rawValue)")
                }
                wait = min(wait, left)
            }
            if let result = await store.notifier.wait(for: ticket, timeout: wait), takesResult {
                return .completed(result)
            }
        }
    }

    /// Waits for the run — and the runs it continues as new into — and decodes the last one's result.
    /// - Throws: ``WorkflowRunError`` if it failed, was cancelled or terminated.
    public func result<W: Workflow>(of handle: WorkflowHandle, as workflow: W.Type, timeout: Duration? = nil)
        async throws -> W.Output
    {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        var run: WorkflowRun
        switch try await awaitClose(runID: handle.runID, timeout: timeout, takesResult: true) {
        case .completed(let result): return try result.decode(as: W.Output.self)
        case .read(let closed): run = closed
        }
        while run.status == .continuedAsNew, let next = try await store.nextRun(after: run.runID) {
            run = try await waitForClose(runID: next.runID, timeout: deadline.map { $0 - ContinuousClock.now })
        }
        guard run.status == .completed, let result = run.result else { throw WorkflowRunError(run: run) }
        return try result.decode(as: W.Output.self)
    }

    private func checkSize(_ payload: Payload, of what: String) throws {
        if payload.data.count > maximumPayloadBytes {
            throw KeelError(
                .invalidArgument, "\(what) is \(payload.data.count) bytes; the limit is \(maximumPayloadBytes)")
        }
    }
}

/// A started run.
public struct WorkflowHandle: Sendable, Hashable, Codable {
    public var workflowID: String
    public var runID: String
    /// `false` when the workflow id already had an open run, which this handle designates.
    public var created: Bool

    public init(workflowID: String, runID: String, created: Bool) {
        self.workflowID = workflowID
        self.runID = runID
        self.created = created
    }
}

/// A run with what it is waiting on, for operators.
public struct WorkflowDescription: Sendable, Codable {
    public var run: WorkflowRun
    public var pending: PendingWork
    /// The run's approval requests, oldest first.
    public var approvals: [ApprovalRecord]
    public var history: [HistoryEvent]?
    /// The runs of the same workflow id before this one (runs it continued from, earlier starts),
    /// newest first, at most 20.
    public var previousRuns: [WorkflowRun] = []
    /// The child workflows this run started, newest first, at most 100 (`worker list --parent ID` lists all).
    public var children: [WorkflowRun] = []
    /// The run's search attributes, by name.
    public var searchAttributes: [String: SearchAttributeValue] = [:]
}

/// A run that closed without a result.
public struct WorkflowRunError: Error, Sendable, CustomStringConvertible {
    public var run: WorkflowRun

    public init(run: WorkflowRun) {
        self.run = run
    }

    public var description: String {
        switch run.status {
        case .failed: "workflow '\(run.workflowID)' failed: \(run.failure?.description ?? "unknown error")"
        case .cancelled: "workflow '\(run.workflowID)' was cancelled" + (run.statusReason.map { ": \($0)" } ?? "")
        case .terminated: "workflow '\(run.workflowID)' was terminated: \(run.statusReason ?? "")"
        case .compensated:
            "workflow '\(run.workflowID)' was compensated after \(run.failure?.description ?? "an error")"
        default: "workflow '\(run.workflowID)' is \(run.status.rawValue)"
        }
    }
}
