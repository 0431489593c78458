import DequeModule
import Foundation
import Logging

/// One run's workflow code, suspended in memory, and the replay state that feeds it.
///
/// The engine creates an execution from the run's history (``replay(_:)``), then applies new
/// events one at a time (``apply(_:at:)``), draining the run's serial executor after each. Every
/// operation the code issues gets the next sequence number; an operation already in history is
/// checked against it (a mismatch blocks the run as non-deterministic), and a new one becomes a
/// command. ``takeNewEvents()`` hands the events of the current task to the store.
///
/// Thread-safety: the state is touched only by the engine, one call at a time, and by workflow
/// code while the engine drains the executor inside those calls; hence `@unchecked Sendable`.
final class WorkflowExecution: @unchecked Sendable {
    let info: WorkflowInfo
    /// The store's task version this execution is in step with (see ``WorkflowStore``).
    var taskVersion = 0
    /// Events in history, including the ones handed out by ``takeNewEvents()``.
    private(set) var historyLength = 0

    private let executor = WorkflowTaskExecutor()
    private var context: WorkflowContext!
    let random: WorkflowRandom
    /// The logger workflow code uses; silent while replaying.
    private(set) var logger: Logger
    /// Whether a new approval request must name its approvers (``WorkerConfiguration/requiresApprovers``).
    private let requiresApprovers: Bool

    // Replay bookkeeping.
    private var recordedCommands: [Int: HistoryEvent.Kind] = [:]
    private var recordedTimerCancellations: Set<Int> = []
    private var recordedClosing: HistoryEvent.Kind?
    private var nextSeq = 1
    private(set) var isReplaying = false
    private(set) var currentTime: Date

    // Operations waiting for an event.
    private var activityWaits: [Int: ActivityWait] = [:]
    private var timerWaits: [Int: TimerWait] = [:]
    private var earlyActivityResults: [Int: HistoryEvent.Kind] = [:]
    private var signalBuffers: [String: Deque<Payload>] = [:]
    private var signalWaiters: [String: Deque<SignalWaiter>] = [:]
    private var nextWaiterID = 0
    private var stranded: [UnsafeContinuation<Void, Never>] = []
    private(set) var cancelRequest: CancelRequest?
    private var approvalWaits: [Int: UnsafeContinuation<ApprovalDecision, Error>] = [:]
    private var earlyApprovalDecisions: [Int: ApprovalDecision] = [:]
    /// Approvals requested and not yet decided (the store withdraws them if the run stops waiting).
    private var undecidedApprovals: Set<Int> = []

    // Compensation (saga): registered compensations, newest last.
    private var compensations: [Compensation] = []
    private var compensationsRegistered = 0
    private var compensationRetryWait: UnsafeContinuation<Void, Error>?
    private var unclaimedCompensationRetries = 0

    // Output.
    private var newEvents: [(kind: HistoryEvent.Kind, timestamp: Date)] = []
    private var result: Result<Payload, Error>?
    /// Set when the code failed and its compensations all ran: the run closes as compensated.
    private var compensated = false
    private var closingTaken = false
    /// Set when the code cannot go on in this task: the run must be blocked, not failed.
    private(set) var taskFailure: WorkflowTaskFailure?
    private var evicted = false

    struct CancelRequest { var reason: String? }

    private struct ActivityWait {
        var activity: String
        /// Compensations are shielded from the run's cancellation.
        var shielded: Bool
        var continuation: UnsafeContinuation<Payload, Error>
    }

    /// An activity that undoes a step, registered by the code (see ``WorkflowContext/addCompensation(_:_:options:)``).
    private struct Compensation {
        var activity: String
        var input: Payload
        var options: ActivityOptions
    }

    private enum TimerWait {
        case sleep(UnsafeContinuation<Void, Error>)
        case signalTimeout(name: String, waiterID: Int)
    }

    private struct SignalWaiter {
        var id: Int
        var timerSeq: Int?
        var continuation: UnsafeContinuation<Payload?, Error>
    }

    private init(info: WorkflowInfo, logger: Logger, requiresApprovers: Bool) {
        self.info = info
        self.requiresApprovers = requiresApprovers
        self.currentTime = info.startedAt
        self.random = WorkflowRandom(seed: info.runID)
        self.logger = logger
    }

    // MARK: - Engine side

    /// Starts the run's code and replays `history` (which begins with `workflowStarted`) against it.
    static func replay(_ history: [HistoryEvent], runID: String, definition: WorkflowDefinition,
                       logger: Logger = Logger(label: "keel.workflow"), requiresApprovers: Bool = false) throws -> WorkflowExecution {
        guard let first = history.first, case .workflowStarted(let type, let workflowID, let input) = first.kind else {
            throw WorkflowTaskFailure(message: "history of run \(runID) does not begin with workflowStarted")
        }
        let execution = WorkflowExecution(
            info: WorkflowInfo(workflowID: workflowID, runID: runID, workflowType: type, startedAt: first.timestamp), logger: logger,
            requiresApprovers: requiresApprovers)
        execution.logger = Logger(label: logger.label) { [unowned execution] _ in
            var handler = ReplaySuppressingLogHandler(base: logger.handler) { execution.isReplaying }
            handler[metadataKey: "workflow-id"] = "\(workflowID)"
            handler[metadataKey: "run-id"] = "\(runID)"
            return handler
        }
        execution.loadRecordedCommands(history)
        // Code that runs before the last recorded event is replaying: what it does already happened.
        execution.isReplaying = history.count > 1
        execution.start(definition: definition, input: input)
        for (index, event) in history.enumerated().dropFirst() where !event.kind.isCommand {
            execution.isReplaying = index < history.count - 1
            execution.currentTime = event.timestamp
            execution.resolve(event.kind)
            execution.executor.drain()
        }
        execution.isReplaying = false
        execution.historyLength = history.count
        execution.checkReplayCompleteness()
        return execution
    }

    /// Applies an event that happened to the run (a completion, a timer, a signal, a cancellation)
    /// and lets the code run until it suspends again.
    func apply(_ kind: HistoryEvent.Kind, at timestamp: Date) {
        currentTime = max(currentTime, timestamp)
        newEvents.append((kind, currentTime))
        resolve(kind)
        executor.drain()
    }

    /// The events of the current task, in order, including the closing command once the code returned.
    func takeNewEvents() -> [(kind: HistoryEvent.Kind, timestamp: Date)] {
        if let closing = closingCommand(), !closingTaken, taskFailure == nil {
            closingTaken = true
            newEvents.append((closing, currentTime))
        }
        let events = newEvents
        newEvents.removeAll(keepingCapacity: true)
        historyLength += events.count
        return events
    }

    /// Whether the code has returned or thrown (the run will close).
    var isFinished: Bool { result != nil }

    /// Stops the suspended code: pending operations throw, and later ones throw at once.
    /// Call before dropping an execution that did not finish.
    func evict() {
        guard !evicted, result == nil else { return }
        evicted = true
        let error = WorkflowEvictedError()
        for (_, wait) in activityWaits { wait.continuation.resume(throwing: error) }
        for (_, wait) in timerWaits { if case .sleep(let continuation) = wait { continuation.resume(throwing: error) } }
        for (_, waiters) in signalWaiters { for waiter in waiters { waiter.continuation.resume(throwing: error) } }
        for (_, continuation) in approvalWaits { continuation.resume(throwing: error) }
        compensationRetryWait?.resume(throwing: error)
        for continuation in stranded { continuation.resume() }
        activityWaits.removeAll(); timerWaits.removeAll(); signalWaiters.removeAll(); stranded.removeAll()
        approvalWaits.removeAll(); compensationRetryWait = nil
        // Code that swallows every error could loop forever: bound the unwinding.
        executor.drain(limit: 100_000)
    }

    /// For `worker replay`: checks that the recorded closing event matches what the code did.
    func checkClosingMatchesHistory() -> WorkflowTaskFailure? {
        if let taskFailure { return taskFailure }
        guard let recordedClosing else { return nil }
        guard let closing = closingCommand() else {
            return nondeterminism(code: "no completion (the code is still waiting)", recorded: recordedClosing.operationDescription)
        }
        guard closing.isSameOperation(as: recordedClosing) else {
            return nondeterminism(code: closing.operationDescription, recorded: recordedClosing.operationDescription)
        }
        return nil
    }

    private func start(definition: WorkflowDefinition, input: Payload) {
        let context = WorkflowContext(execution: self)
        self.context = context
        Task(executorPreference: executor) { [self] in
            do {
                let output = try await definition.run(context, input)
                finish(.success(output))
            } catch {
                if compensations.isEmpty || evicted || taskFailure != nil || error is WorkflowTaskFailure {
                    finish(.failure(error))
                } else {
                    await compensate(after: error)
                }
            }
        }
        executor.drain()
    }

    private func finish(_ outcome: Result<Payload, Error>) {
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
        case .failure(let error):
            if compensated { return .workflowCompensated(cause: ErrorInfo(error)) }
            if let cancelRequest, error is WorkflowCancelledError || error is CancellationError {
                return .workflowCancelled(reason: cancelRequest.reason)
            }
            return .workflowFailed(failure: ErrorInfo(error))
        }
    }

    private func loadRecordedCommands(_ history: [HistoryEvent]) {
        for event in history where event.kind.isCommand {
            switch event.kind {
            case .timerCancelled(let seq): recordedTimerCancellations.insert(seq)
            case .workflowCompleted, .workflowFailed, .workflowCancelled, .workflowCompensated: recordedClosing = event.kind
            default: if let seq = event.kind.seq { recordedCommands[seq] = event.kind }
            }
        }
    }

    private func checkReplayCompleteness() {
        guard taskFailure == nil else { return }
        if let missing = recordedCommands.min(by: { $0.key < $1.key })?.value {
            taskFailure = nondeterminism(code: "no operation #\(missing.seq ?? 0) (the code never issued it)",
                                         recorded: missing.operationDescription)
        } else if let seq = recordedTimerCancellations.min() {
            taskFailure = nondeterminism(code: "no timer cancellation #\(seq)", recorded: "#\(seq) timer cancellation")
        }
    }

    private func resolve(_ kind: HistoryEvent.Kind) {
        switch kind {
        case .activityCompleted(let seq, let result, _):
            if let wait = activityWaits.removeValue(forKey: seq) {
                wait.continuation.resume(returning: result)
            } else {
                earlyActivityResults[seq] = kind
            }
        case .activityFailed(let seq, let failure, let attempts):
            if let wait = activityWaits.removeValue(forKey: seq) {
                wait.continuation.resume(throwing: ActivityFailure(activityName: wait.activity, cause: failure, attempts: attempts))
            } else {
                earlyActivityResults[seq] = kind
            }
        case .timerFired(let seq):
            switch timerWaits.removeValue(forKey: seq) {
            case .sleep(let continuation): continuation.resume()
            case .signalTimeout(let name, let waiterID):
                if let index = signalWaiters[name]?.firstIndex(where: { $0.id == waiterID }) {
                    signalWaiters[name]!.remove(at: index).continuation.resume(returning: nil)
                }
            case nil: break  // a timer whose wait ended otherwise (cancelled or already signalled)
            }
        case .signalReceived(let name, let payload, _):
            if let waiter = signalWaiters[name]?.popFirst() {
                if let timerSeq = waiter.timerSeq, timerWaits.removeValue(forKey: timerSeq) != nil {
                    recordTimerCancellation(timerSeq)
                }
                waiter.continuation.resume(returning: payload)
            } else {
                signalBuffers[name, default: []].append(payload)
            }
        case .approvalDecided(let seq, let decision):
            undecidedApprovals.remove(seq)
            if let continuation = approvalWaits.removeValue(forKey: seq) {
                continuation.resume(returning: decision)
            } else {
                earlyApprovalDecisions[seq] = decision
            }
        case .compensationRetryRequested:
            if let continuation = compensationRetryWait {
                compensationRetryWait = nil
                continuation.resume()
            } else {
                unclaimedCompensationRetries += 1
            }
        case .cancelRequested(let reason):
            guard cancelRequest == nil else { return }
            cancelRequest = CancelRequest(reason: reason)
            let error = WorkflowCancelledError(reason: reason)
            // Resumed in a fixed order (by sequence number, then signal name): dictionary order
            // differs between processes, and the order decides what the code does next on replay.
            for (seq, wait) in activityWaits.sorted(by: { $0.key < $1.key }) where !wait.shielded {
                activityWaits[seq] = nil
                wait.continuation.resume(throwing: error)
            }
            for (_, wait) in timerWaits.sorted(by: { $0.key < $1.key }) {
                if case .sleep(let continuation) = wait { continuation.resume(throwing: error) }
            }
            for (_, waiters) in signalWaiters.sorted(by: { $0.key < $1.key }) {
                for waiter in waiters { waiter.continuation.resume(throwing: error) }
            }
            for (_, continuation) in approvalWaits.sorted(by: { $0.key < $1.key }) { continuation.resume(throwing: error) }
            timerWaits.removeAll(); signalWaiters.removeAll(); approvalWaits.removeAll()
        default:
            break
        }
    }

    // MARK: - Operations (called by WorkflowContext on the run's executor)

    /// Whether history already holds the command of operation `seq`.
    ///
    /// Arguments are checked the same way on every replay (the same code and input give the same
    /// outcome, so replay takes the same path); only worker policies that may differ between
    /// workers (``WorkerConfiguration/requiresApprovers``) spare what history already holds.
    private func isRecorded(_ seq: Int) -> Bool {
        recordedCommands[seq] != nil
    }

    private func takeSeq() -> Int {
        defer { nextSeq += 1 }
        return nextSeq
    }

    private func checkCanProceed() throws {
        if evicted { throw WorkflowEvictedError() }
        if let cancelRequest { throw WorkflowCancelledError(reason: cancelRequest.reason) }
    }

    /// Records a command issued by the code; during replay, checks it against the recorded one.
    /// - Returns: the recorded command when there is one, `nil` for a new command.
    private func issue(_ command: HistoryEvent.Kind) async throws -> HistoryEvent.Kind? {
        if let seq = command.seq, let recorded = recordedCommands.removeValue(forKey: seq) {
            guard recorded.isSameOperation(as: command) else {
                taskFailure = nondeterminism(code: command.operationDescription, recorded: recorded.operationDescription)
                await strand()
                throw WorkflowEvictedError()
            }
            return recorded
        }
        newEvents.append((command, currentTime))
        return nil
    }

    private func recordTimerCancellation(_ seq: Int) {
        if recordedTimerCancellations.remove(seq) == nil {
            newEvents.append((.timerCancelled(seq: seq), currentTime))
        }
    }

    /// Suspends the code for good (until eviction): used once the task has failed.
    private func strand() async {
        await withUnsafeContinuation { stranded.append($0) }
    }

    /// Fails the current task (a bug or mismatch in the code, not a workflow failure) and suspends
    /// the calling code for good.
    func failTask(_ message: String) async throws -> Never {
        if taskFailure == nil { taskFailure = WorkflowTaskFailure(message: message) }
        await strand()
        throw WorkflowEvictedError()
    }

    private func nondeterminism(code: String, recorded: String) -> WorkflowTaskFailure {
        WorkflowTaskFailure(message: "non-deterministic workflow '\(info.workflowType)' (id \(info.workflowID)): "
            + "the code issued \(code) where the history has \(recorded)")
    }

    func executeActivity(name: String, input: Payload, options: ActivityOptions, shielded: Bool = false) async throws -> Payload {
        if shielded {
            if evicted { throw WorkflowEvictedError() }
        } else {
            try checkCanProceed()
        }
        try options.validate()
        let seq = takeSeq()
        let key = options.idempotencyKey ?? "\(info.workflowID)/\(info.runID)/\(seq)"
        _ = try await issue(.activityScheduled(seq: seq, activity: name, input: input, idempotencyKey: key, options: options))
        switch earlyActivityResults.removeValue(forKey: seq) {
        case .activityCompleted(_, let result, _): return result
        case .activityFailed(_, let failure, let attempts):
            throw ActivityFailure(activityName: name, cause: failure, attempts: attempts)
        default:
            return try await withUnsafeThrowingContinuation {
                activityWaits[seq] = ActivityWait(activity: name, shielded: shielded, continuation: $0)
            }
        }
    }

    func sleep(seconds: Double) async throws {
        try checkCanProceed()
        guard !seconds.isNaN else { throw InvalidValueError(name: "sleep", value: "NaN", requirement: "a point in time") }
        guard seconds > 0 else { return }
        _ = try Duration.checked(seconds: seconds, "sleep duration")
        let seq = takeSeq()
        _ = try await issue(.timerStarted(seq: seq, fireAt: currentTime.addingTimeInterval(seconds)))
        try await withUnsafeThrowingContinuation { timerWaits[seq] = .sleep($0) }
    }

    func waitForSignal(named name: String, timeout: Duration?) async throws -> Payload? {
        try checkCanProceed()
        if let payload = signalBuffers[name]?.popFirst() { return payload }
        var timerSeq: Int?
        if let timeout {
            _ = try timeout.checked("signal wait timeout")
            let seq = takeSeq()
            _ = try await issue(.timerStarted(seq: seq, fireAt: currentTime.addingTimeInterval(timeout.seconds)))
            timerSeq = seq
        }
        let waiterID = nextWaiterID
        nextWaiterID += 1
        return try await withUnsafeThrowingContinuation { continuation in
            signalWaiters[name, default: []].append(SignalWaiter(id: waiterID, timerSeq: timerSeq, continuation: continuation))
            if let timerSeq { timerWaits[timerSeq] = .signalTimeout(name: name, waiterID: waiterID) }
        }
    }

    func sideEffect(named name: String, _ body: () throws -> Payload) async throws -> Payload {
        try checkCanProceed()
        let seq = takeSeq()
        if case .markerRecorded(_, let recordedName, let value)? = recordedCommands[seq], recordedName == name {
            _ = try await issue(.markerRecorded(seq: seq, name: name, value: value))
            return value
        }
        let value = try body()
        _ = try await issue(.markerRecorded(seq: seq, name: name, value: value))
        return value
    }

    // MARK: Approvals

    /// Records an approval request; its decision is awaited with ``decision(ofApprovalAt:)``.
    func startApproval(name: String, summary: String, payload: Payload, approvers: [String], timeout: Duration) async throws
        -> (seq: Int, request: ApprovalRequest) {
        try checkCanProceed()
        _ = try timeout.checked("approval '\(name)' timeout", allowsZero: false)
        // A worker policy, not the code's: a request already recorded by another worker is kept.
        if requiresApprovers, approvers.isEmpty, !isRecorded(nextSeq) {
            try await failTask("approval '\(name)' names no approvers, and this worker requires them (--require-approvers): "
                + "anyone could decide it")
        }
        let seq = takeSeq()
        let request = ApprovalRequest(id: ApprovalRequest.id(runID: info.runID, seq: seq), name: name, summary: summary,
                                      payload: payload, approvers: approvers, deadline: currentTime.addingTimeInterval(timeout.seconds))
        undecidedApprovals.insert(seq)
        if case .approvalRequested(_, let recorded)? = try await issue(.approvalRequested(seq: seq, request: request)) {
            return (seq, recorded)
        }
        return (seq, request)
    }

    /// The decision on the approval requested by operation `seq`, kept if it arrived earlier.
    func decision(ofApprovalAt seq: Int) async throws -> ApprovalDecision {
        try checkCanProceed()
        if let decision = earlyApprovalDecisions.removeValue(forKey: seq) { return decision }
        return try await withUnsafeThrowingContinuation { approvalWaits[seq] = $0 }
    }

    // MARK: Compensation

    /// Registers an activity that undoes a step. Its idempotency key is fixed by its registration
    /// order, so a retried or replayed compensation keeps it.
    func addCompensation(activity: String, input: Payload, options: ActivityOptions) throws {
        try options.validate()
        var options = options
        if options.idempotencyKey == nil {
            options.idempotencyKey = "\(info.workflowID)/\(info.runID)/compensation/\(compensationsRegistered)"
        }
        compensationsRegistered += 1
        compensations.append(Compensation(activity: activity, input: input, options: options))
    }

    /// Runs the registered compensations, newest first, shielded from cancellation. A compensation
    /// that fails for good parks the run (`compensationFailed`) until an operator asks for a retry.
    private func compensate(after cause: Error) async {
        do {
            _ = try await issue(.compensationStarted(seq: takeSeq(), cause: ErrorInfo(cause)))
            while let compensation = compensations.last {
                do {
                    _ = try await executeActivity(name: compensation.activity, input: compensation.input,
                                                  options: compensation.options, shielded: true)
                    compensations.removeLast()
                } catch let failure as ActivityFailure {
                    _ = try await issue(.compensationFailed(seq: takeSeq(), activity: compensation.activity, failure: failure.cause))
                    try await waitForCompensationRetry()
                }
            }
            compensated = true
            finish(.failure(cause))
        } catch {
            finish(.failure(error))  // evicted, or the task failed: nothing is recorded
        }
    }

    private func waitForCompensationRetry() async throws {
        if evicted { throw WorkflowEvictedError() }
        if unclaimedCompensationRetries > 0 {
            unclaimedCompensationRetries -= 1
            return
        }
        try await withUnsafeThrowingContinuation { compensationRetryWait = $0 }
    }

    var now: Date { currentTime }
    /// Whether approvals the code requested still wait for a decision.
    var hasPendingApprovals: Bool { !undecidedApprovals.isEmpty }
    var isCancellationRequested: Bool { cancelRequest != nil }
}

/// Thrown into workflow code whose in-memory execution is being discarded; never recorded.
struct WorkflowEvictedError: Error, CustomStringConvertible {
    var description: String { "workflow execution evicted from memory" }
}
