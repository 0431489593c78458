import Foundation
import Logging

/// One run's workflow code, suspended in memory: the shell around its ``ReplayStateMachine``.
///
/// The engine creates an execution from the run's history (``replay(_:runID:definition:logger:requiresApprovers:)``),
/// then applies new events one at a time (``apply(_:at:)``), draining the run's serial executor
/// after each. The code's operations go to the state machine, which numbers them, checks them
/// against history and says whether they complete at once or wait; the shell keeps the
/// continuation of each wait and resumes it when the machine says an event woke it.
/// ``takeNewEvents()`` hands the events of the current task to the store.
///
/// Thread-safety: the state is touched only by the engine, one call at a time, and by workflow
/// code while the engine drains the executor inside those calls; hence `@unchecked Sendable`.
final class WorkflowExecution: @unchecked Sendable {
    let info: WorkflowInfo
    /// The store's task version this execution is in step with (see ``WorkflowStore``).
    var taskVersion = 0
    /// Events in history, including the ones handed out by ``takeNewEvents()``.
    private(set) var historyLength = 0
    /// What the run's row holds that never changes, once the engine has learnt it (from the
    /// run's start or a claim of its task): the fast path's commits then need no locking read.
    var runConstants: RunConstants?

    private var machine: ReplayStateMachine
    private let executor = WorkflowTaskExecutor()
    private var context: WorkflowContext!
    let random: WorkflowRandom
    /// The logger workflow code uses; silent while replaying.
    private(set) var logger: Logger
    /// Whether a new approval request must name its approvers (``WorkerConfiguration/requiresApprovers``).
    private let requiresApprovers: Bool

    /// The continuations of suspended operations, by the machine's wait id.
    private var waits: [ReplayStateMachine.WaitID: UnsafeContinuation<ReplayStateMachine.WakeValue, Error>] = [:]
    /// Wakes for waits whose continuation is not stored yet (a task cancelled as it suspends).
    private var earlyWakes: [ReplayStateMachine.WaitID: ReplayStateMachine.WakeValue] = [:]
    /// Code suspended for good after its task failed; resumed only to unwind it on eviction.
    private var stranded: [UnsafeContinuation<Void, Never>] = []
    /// The compensations the code registered (see ``WorkflowContext/addCompensation(_:_:options:)``).
    var compensations = CompensationStack()

    // Output.
    private var result: Result<Payload, Error>?
    /// Set when the code failed and its compensations all ran: the run closes as compensated.
    var compensated = false
    private var closingTaken = false
    /// Set when the code cannot go on in this task: the run must be blocked, not failed.
    private(set) var taskFailure: WorkflowTaskFailure?
    private(set) var evicted = false

    private init(info: WorkflowInfo, machine: ReplayStateMachine, logger: Logger, requiresApprovers: Bool) {
        self.info = info
        self.machine = machine
        self.requiresApprovers = requiresApprovers
        self.random = WorkflowRandom(seed: info.runID)
        self.logger = logger
    }

    // MARK: - Engine side

    /// Starts the run's code and replays `history` (which begins with `workflowStarted`) against it.
    static func replay(
        _ history: [HistoryEvent], runID: String, definition: WorkflowDefinition,
        logger: Logger = Logger(label: "keel.workflow"), requiresApprovers: Bool = false
    ) throws -> WorkflowExecution {
        let machine = try ReplayStateMachine(history: history, runID: runID)
        guard case .workflowStarted(let type, let workflowID, let input, let parent) = history[0].kind else {
            preconditionFailure("the state machine checked that history begins with workflowStarted")
        }
        let execution = WorkflowExecution(
            info: WorkflowInfo(
                workflowID: workflowID, runID: runID, workflowType: type, startedAt: history[0].timestamp,
                parent: parent),
            machine: machine, logger: logger, requiresApprovers: requiresApprovers)
        execution.logger = Logger(label: logger.label) { [unowned execution] _ in
            var handler = ReplaySuppressingLogHandler(base: logger.handler) { execution.isReplaying }
            handler[metadataKey: "workflow-id"] = "\(workflowID)"
            handler[metadataKey: "run-id"] = "\(runID)"
            return handler
        }
        // Code that runs before the last recorded event is replaying: what it does already happened.
        execution.machine.isReplaying = history.count > 1
        execution.start(definition: definition, input: input)
        for (index, event) in history.enumerated().dropFirst() where !event.kind.isCommand {
            execution.machine.isReplaying = index < history.count - 1
            execution.resume(execution.machine.apply(event.kind, at: event.timestamp, isNew: false))
        }
        execution.machine.isReplaying = false
        execution.historyLength = history.count
        if execution.taskFailure == nil, let message = execution.machine.unreplayedCommand() {
            execution.taskFailure = WorkflowTaskFailure(message: message)
        }
        return execution
    }

    /// Applies an event that happened to the run (a completion, a timer, a signal, a cancellation)
    /// and lets the code run until it suspends again.
    func apply(_ kind: HistoryEvent.Kind, at timestamp: Date) {
        resume(machine.apply(kind, at: timestamp, isNew: true))
    }

    /// The events of the current task, in order, including the closing command once the code returned.
    func takeNewEvents() -> [(kind: HistoryEvent.Kind, timestamp: Date)] {
        var closing: HistoryEvent.Kind?
        if let command = closingCommand(), !closingTaken, taskFailure == nil {
            closingTaken = true
            closing = command
        }
        let events = machine.takeNewEvents(closing: closing)
        historyLength += events.count
        return events
    }

    /// Whether timer `seq` still waits to fire.
    func awaitsTimer(_ seq: Int) -> Bool {
        machine.awaitsTimer(seq)
    }

    /// Whether the code has returned or thrown (the run will close).
    var isFinished: Bool { result != nil }

    /// Whether the code ended by continuing as new.
    var continuesAsNew: Bool {
        if case .failure(let error)? = result { return error is ContinueAsNewRequest }
        return false
    }

    /// Stops the suspended code: pending operations throw, and later ones throw at once.
    /// Call before dropping an execution that did not finish.
    func evict() {
        guard !evicted, result == nil else { return }
        evicted = true
        let error = WorkflowEvictedError()
        for (_, continuation) in waits.sorted(by: { $0.key < $1.key }) { continuation.resume(throwing: error) }
        for continuation in stranded { continuation.resume() }
        waits.removeAll()
        stranded.removeAll()
        // Code that swallows every error could loop forever: bound the unwinding.
        executor.drain(limit: 100_000)
    }

    /// For `worker replay`: checks that the recorded closing event matches what the code did.
    func checkClosingMatchesHistory() -> WorkflowTaskFailure? {
        if let taskFailure { return taskFailure }
        return machine.closingMismatch(closingCommand()).map { WorkflowTaskFailure(message: $0) }
    }

    var now: Date { machine.currentTime }
    var isReplaying: Bool { machine.isReplaying }
    /// Whether approvals the code requested still wait for a decision.
    var hasPendingApprovals: Bool { !machine.undecidedApprovals.isEmpty }
    var isCancellationRequested: Bool { machine.cancelRequest != nil }
    /// Whether the code started child workflows.
    var hasChildren: Bool { machine.hasChildren }

    private func start(definition: WorkflowDefinition, input: Payload) {
        let context = WorkflowContext(execution: self)
        self.context = context
        Task(executorPreference: executor) { [self] in
            do {
                let output = try await definition.run(context, input)
                finish(.success(output))
            } catch {
                if compensations.isEmpty || evicted || taskFailure != nil || error is WorkflowTaskFailure
                    || error is ContinueAsNewRequest
                {
                    finish(.failure(error))
                } else {
                    await compensate(after: error)
                }
            }
        }
        executor.drain()
    }

    /// Resumes the woken waits in order, then runs the code until it suspends again.
    private func resume(_ wakes: [ReplayStateMachine.Wake]) {
        wake(wakes)
        executor.drain()
    }

    /// Resumes the woken waits (their code runs when the executor is next drained).
    private func wake(_ wakes: [ReplayStateMachine.Wake]) {
        for wake in wakes {
            if let continuation = waits.removeValue(forKey: wake.wait) {
                continuation.resume(returning: wake.value)
            } else {
                earlyWakes[wake.wait] = wake.value
            }
        }
    }

    func finish(_ outcome: Result<Payload, Error>) {
        guard !evicted, taskFailure == nil else { return }
        if case .failure(let error as WorkflowTaskFailure) = outcome {
            taskFailure = error
            return
        }
        result = outcome
    }

    private func closingCommand() -> HistoryEvent.Kind? {
        switch result {
        case nil: return nil
        case .success(let payload): return .workflowCompleted(result: payload)
        case .failure(let request as ContinueAsNewRequest):
            return .workflowContinuedAsNew(
                input: request.input, runID: request.runID, signals: machine.unconsumedSignals)
        case .failure(let error):
            if compensated { return .workflowCompensated(cause: ErrorInfo(error)) }
            if let cancelRequest = machine.cancelRequest, error is WorkflowCancelledError || error is CancellationError
            {
                return .workflowCancelled(reason: cancelRequest.reason)
            }
            return .workflowFailed(failure: ErrorInfo(error))
        }
    }

    // MARK: - Operations (called by WorkflowContext on the run's executor)

    /// Operations of a cancelled Swift task (a task-group branch, an `async let` left unawaited)
    /// throw `CancellationError` before anything is recorded; so do those of a cancelled run,
    /// with ``WorkflowCancelledError``.
    private func checkCanProceed() throws {
        if evicted { throw WorkflowEvictedError() }
        if let cancelRequest = machine.cancelRequest { throw WorkflowCancelledError(reason: cancelRequest.reason) }
        try Task.checkCancellation()
    }

    /// Completes an operation as the machine says: at once, after its wait, or never (non-determinism).
    /// While it waits, cancelling its Swift task ends the wait as the machine says
    /// (``ReplayStateMachine/cancelWait(_:)``).
    private func perform(_ step: ReplayStateMachine.Step) async throws -> ReplayStateMachine.WakeValue {
        let value: ReplayStateMachine.WakeValue
        switch step {
        case .ready(let ready): value = ready
        case .wait(let id):
            // The handler runs on this run's executor: workflow code cancels its own tasks, and
            // the engine never cancels the run's task (it evicts).
            value = try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { continuation in
                    if let early = earlyWakes.removeValue(forKey: id) {
                        continuation.resume(returning: early)
                    } else {
                        waits[id] = continuation
                    }
                }
            } onCancel: { [self] in
                cancelWait(id)
            }
        case .nonDeterministic(let message): try await failTask(message)
        }
        switch value {
        case .cancelled(let reason): throw WorkflowCancelledError(reason: reason)
        case .taskCancelled: throw CancellationError()
        default: return value
        }
    }

    private func cancelWait(_ id: ReplayStateMachine.WaitID) {
        guard !evicted else { return }
        wake(machine.cancelWait(id))
    }

    /// Fails the task on a non-determinism the machine found.
    func check(_ mismatch: ReplayStateMachine.NonDeterminism?) async throws {
        if let mismatch { try await failTask(mismatch.message) }
    }

    /// Fails the current task (a bug or mismatch in the code, not a workflow failure) and suspends
    /// the calling code for good.
    func failTask(_ message: String) async throws -> Never {
        if taskFailure == nil { taskFailure = WorkflowTaskFailure(message: message) }
        await withUnsafeContinuation { stranded.append($0) }
        throw WorkflowEvictedError()
    }

    func executeActivity(name: String, input: Payload, options: ActivityOptions, shielded: Bool = false) async throws
        -> Payload
    {
        if shielded {
            if evicted { throw WorkflowEvictedError() }
        } else {
            try checkCanProceed()
        }
        try options.validate()
        let step = machine.scheduleActivity(
            name: name, input: input, options: options,
            defaultKey: { [info] in "\(info.workflowID)/\(info.runID)/\($0)" }, shielded: shielded)
        switch try await perform(step) {
        case .activityCompleted(let result): return result
        case .activityFailed(let failure): throw failure
        case let other: preconditionFailure("an activity woken by \(other)")
        }
    }

    func sleep(seconds: Double) async throws {
        try checkCanProceed()
        guard !seconds.isNaN else {
            throw InvalidValueError(name: "sleep", value: "NaN", requirement: "a point in time")
        }
        guard seconds > 0 else { return }
        _ = try Duration.checked(seconds: seconds, "sleep duration")
        _ = try await perform(machine.startTimer(seconds: seconds))
    }

    /// The next signal called any of `names`, or `nil` when `timeout` passed first.
    func waitForSignal(named names: [String], timeout: Duration?) async throws -> ReceivedSignal? {
        try checkCanProceed()
        if let timeout { _ = try timeout.checked("signal wait timeout") }
        guard
            case .signal(let signal) = try await perform(
                machine.waitForSignal(named: names, timeoutSeconds: timeout?.seconds))
        else {
            preconditionFailure("a signal wait woken by something else")
        }
        return signal
    }

    /// Ends the code: the run closes as continued-as-new and the next run starts with `input`.
    func continueAsNew(input: Payload) async throws -> Never {
        try checkCanProceed()
        throw ContinueAsNewRequest(input: input, runID: RunID.make())
    }

    func sideEffect(named name: String, _ body: () throws -> Payload) async throws -> Payload {
        try checkCanProceed()
        let value: Payload
        if let recorded = machine.recordedSideEffect, recorded.name == name {
            value = recorded.value
        } else {
            value = try body()
        }
        try await check(machine.recordSideEffect(named: name, value: value))
        return value
    }

    func version(changeID: String, minSupported: Int, maxSupported: Int) async throws -> Int {
        try checkCanProceed()
        switch machine.version(changeID: changeID, minSupported: minSupported, maxSupported: maxSupported) {
        case .success(let version): return version
        case .failure(let blocked): try await failTask(blocked.message)
        }
    }

    // MARK: Approvals

    /// Records an approval request; its decision is awaited with ``decision(ofApprovalAt:)``.
    func startApproval(name: String, summary: String, payload: Payload, approvers: [String], timeout: Duration)
        async throws
        -> (seq: Int, request: ApprovalRequest)
    {
        try checkCanProceed()
        _ = try timeout.checked("approval '\(name)' timeout", allowsZero: false)
        // A worker policy, not the code's: a request already recorded by another worker is kept.
        if requiresApprovers, approvers.isEmpty, !machine.nextOperationIsRecorded {
            try await failTask(
                "approval '\(name)' names no approvers, and this worker requires them (--require-approvers): "
                    + "anyone could decide it")
        }
        let deadline = machine.currentTime.addingTimeInterval(timeout.seconds)
        let requested = machine.requestApproval { [info] seq in
            ApprovalRequest(
                id: ApprovalRequest.id(runID: info.runID, seq: seq), name: name, summary: summary,
                payload: payload, approvers: approvers, deadline: deadline)
        }
        switch requested {
        case .success(let requested): return requested
        case .failure(let mismatch): try await failTask(mismatch.message)
        }
    }

    /// The decision on the approval requested by operation `seq`, kept if it arrived earlier.
    func decision(ofApprovalAt seq: Int) async throws -> ApprovalDecision {
        try checkCanProceed()
        guard case .approvalDecided(let decision) = try await perform(machine.awaitDecision(ofApprovalAt: seq)) else {
            preconditionFailure("an approval wait woken by something else")
        }
        return decision
    }

    // MARK: Other workflows

    /// Sends signal `name` to the open run of `workflowID`. - Returns: the run it reached.
    func signalExternal(workflowID: String, name: String, payload: Payload) async throws -> String {
        try checkCanProceed()
        return try await sendExternalRequest(to: workflowID) {
            .externalSignalRequested(seq: $0, workflowID: workflowID, signal: name, payload: payload)
        }
    }

    /// Requests cancellation of the open run of `workflowID`. - Returns: the run it reached.
    func cancelExternal(workflowID: String, reason: String?) async throws -> String {
        try checkCanProceed()
        return try await sendExternalRequest(to: workflowID) {
            .externalCancelRequested(seq: $0, workflowID: workflowID, reason: reason)
        }
    }

    private func sendExternalRequest(to workflowID: String, _ command: (Int) -> HistoryEvent.Kind) async throws
        -> String
    {
        switch try await perform(machine.sendExternalRequest(command)) {
        case .externalRequestDelivered(let runID): return runID
        case .externalRequestFailed(let failure): throw ExternalWorkflowError(workflowID: workflowID, failure: failure)
        case let other: preconditionFailure("a request to another workflow woken by \(other)")
        }
    }

    // MARK: Stage and search attributes

    func setStage(_ stage: String) async throws {
        try checkCanProceed()
        try await check(machine.record { .stageChanged(seq: $0, stage: stage) })
    }

    func upsertSearchAttributes(_ attributes: [String: SearchAttributeValue]) async throws {
        try checkCanProceed()
        try await check(machine.record { .searchAttributesUpserted(seq: $0, attributes: attributes) })
    }

    // MARK: Child workflows

    /// Starts a child workflow (the default id derives from this run and the operation).
    /// - Returns: the operation's sequence number, the child's workflow id and its run id.
    func startChild(workflowType: String, workflowID: String?, input: Payload, options: ChildWorkflowOptions)
        async throws -> (seq: Int, workflowID: String, runID: String)
    {
        try checkCanProceed()
        var childID = ""
        let (seq, step) = machine.startChild { [info] seq in
            childID = workflowID ?? "\(info.workflowID)/\(info.runID)/\(seq)"
            return .childWorkflowRequested(
                seq: seq, workflowType: workflowType, workflowID: childID, input: input, options: options)
        }
        switch try await perform(step) {
        case .childStarted(let runID): return (seq, childID, runID)
        case .childStartFailed(let failure):
            throw ChildWorkflowStartError(workflowID: childID, message: failure.message)
        case let other: preconditionFailure("a child workflow's start woken by \(other)")
        }
    }

    /// The result of the child started by operation `seq`.
    /// - Throws: ``ChildWorkflowFailure`` when it did not complete.
    func childResult(seq: Int, workflowType: String, workflowID: String) async throws -> Payload {
        try checkCanProceed()
        guard case .childClosed(let closure) = try await perform(machine.awaitChildClosure(ofChildAt: seq)) else {
            preconditionFailure("a child workflow's result woken by something else")
        }
        guard closure.status == .completed else {
            throw ChildWorkflowFailure(
                workflowType: workflowType, workflowID: workflowID, runID: closure.runID, status: closure.status,
                cause: closure.failure
                    ?? ErrorInfo(type: "ChildWorkflow.\(closure.status.rawValue)", message: closure.status.rawValue))
        }
        return closure.result ?? .emptyObject
    }

    // MARK: Compensation records (the runner is in WorkflowExecution+Compensation.swift)

    func recordCompensationStarted(cause: Error) async throws {
        try await check(machine.startCompensation(cause: ErrorInfo(cause)))
    }

    func recordCompensationFailed(activity: String, failure: ErrorInfo) async throws {
        try await check(machine.recordCompensationFailure(activity: activity, failure: failure))
    }

    func waitForCompensationRetry() async throws {
        if evicted { throw WorkflowEvictedError() }
        _ = try await perform(machine.awaitCompensationRetry())
    }
}

/// Thrown by ``WorkflowContext/continueAsNew(input:)`` to end the code; the run's closing
/// command carries it. The next run's id is drawn once, when the code asks.
struct ContinueAsNewRequest: Error, CustomStringConvertible {
    var input: Payload
    var runID: String
    var description: String {
        "the workflow continues as new (this error ends its code: let it propagate, do not catch it)"
    }
}

/// Thrown into workflow code whose in-memory execution is being discarded; never recorded.
struct WorkflowEvictedError: Error, CustomStringConvertible {
    var description: String { "workflow execution evicted from memory" }
}
