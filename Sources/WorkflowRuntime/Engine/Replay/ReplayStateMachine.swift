import DequeModule
import Foundation

/// The replay state machine of one run: a value that takes the run's events and the operations
/// its code issues, and hands back the commands to record and the waits to wake. It holds no
/// continuation and runs no code, so it is tested with plain values (``WorkflowExecution`` is the
/// shell that runs the code and owns the continuations).
///
/// (One file of some 650 lines on purpose: the machine's state is private, so every transition —
/// each event kind, each operation, each cancellation — is written here and nowhere else.)
///
/// Every operation gets the next sequence number. An operation whose command history already
/// holds is checked against it (``HistoryEvent/Kind/isSameOperation(as:)``): a mismatch is a
/// non-determinism. A new operation becomes a command in ``newEvents``. An event for an operation
/// nobody waits on yet (an activity result that arrived before the code awaited it, a signal no
/// one waits for) is kept until the code asks for it.
package struct ReplayStateMachine {
    /// Names a suspended operation; the shell keeps its continuation under this id.
    package typealias WaitID = Int

    /// What wakes a suspended operation. (Indirect: a suspended operation's async frame holds
    /// one, so a box keeps the frames of 10,000 waiting runs small — inline, the largest case
    /// made every frame that held one spill into a slab of its own.)
    package indirect enum WakeValue: Sendable, Hashable {
        case activityCompleted(Payload)
        case activityFailed(ActivityFailure)
        case timerFired
        /// A signal (its name and payload), or `nil` when the wait's timeout fired first.
        case signal(ReceivedSignal?)
        case approvalDecided(ApprovalDecision)
        /// A signal or cancellation sent to another workflow reached its run.
        case externalRequestDelivered(runID: String)
        /// A signal or cancellation sent to another workflow found no open run.
        case externalRequestFailed(ErrorInfo)
        /// A child workflow started as this run.
        case childStarted(runID: String)
        /// A child workflow could not start.
        case childStartFailed(ErrorInfo)
        /// A child workflow closed.
        case childClosed(ChildClosure)
        case compensationRetry
        /// The run's cancellation was requested: the operation throws ``WorkflowCancelledError``.
        case cancelled(reason: String?)
        /// The code cancelled the Swift task awaiting the operation (or the activity it awaited
        /// stopped on that request): the operation throws `CancellationError`.
        case taskCancelled
    }

    /// How a child workflow ended (``HistoryEvent/Kind/childWorkflowClosed(seq:runID:status:result:failure:)``).
    package struct ChildClosure: Sendable, Hashable {
        package var runID: String
        package var status: RunStatus
        package var result: Payload?
        package var failure: ErrorInfo?
    }

    /// A suspended operation to resume, in the order returned.
    package struct Wake: Sendable, Hashable {
        package var wait: WaitID
        package var value: WakeValue
    }

    /// The outcome of an operation: at once, after a wait, or a non-determinism that fails the task.
    package enum Step: Sendable, Hashable {
        case ready(WakeValue)
        case wait(WaitID)
        case nonDeterministic(message: String)
    }

    package let workflowType: String
    package let workflowID: String
    /// The time the code sees: the timestamp of the event being applied.
    package private(set) var currentTime: Date
    /// Whether the event being applied was already in history (what the code does then already happened).
    package var isReplaying = false

    // What history recorded, consumed as the code issues the same operations.
    private var recordedCommands: [Int: HistoryEvent.Kind] = [:]
    private var recordedTimerCancellations: Set<Int> = []
    private var recordedActivityCancellations: Set<Int> = []
    package private(set) var recordedClosing: HistoryEvent.Kind?
    package private(set) var nextSeq = 1
    private var nextWaitID = 0

    // Operations waiting for an event, by what wakes them.
    private var activityWaits: [Int: ActivityWait] = [:]
    private var timerWaits: [Int: TimerWait] = [:]
    /// A wait for any of several names is queued under each of them.
    private var signalWaiters: [String: Deque<SignalWaiter>] = [:]
    private var approvalWaits: [Int: WaitID] = [:]
    private var externalRequestWaits: [Int: WaitID] = [:]
    private var childStartWaits: [Int: WaitID] = [:]
    private var childResultWaits: [Int: WaitID] = [:]
    private var compensationRetryWait: WaitID?

    // Events that arrived before the code asked for them.
    private var earlyActivityResults: [Int: HistoryEvent.Kind] = [:]
    private var signalBuffers: [String: Deque<BufferedSignal>] = [:]
    /// Numbers buffered signals in the order they arrived.
    private var signalArrivals = 0
    private var earlyApprovalDecisions: [Int: ApprovalDecision] = [:]
    private var earlyExternalOutcomes: [Int: WakeValue] = [:]
    private var earlyChildStarts: [Int: WakeValue] = [:]
    private var earlyChildClosures: [Int: ChildClosure] = [:]
    private var unclaimedCompensationRetries = 0

    /// Set once the run's cancellation was requested (later requests change nothing).
    package private(set) var cancelRequest: CancelRequest?
    /// Whether the code started child workflows (the store applies their parent-close policy when the run closes).
    package private(set) var hasChildren = false
    /// Approvals requested and not yet decided (the store withdraws them if the run stops waiting).
    package private(set) var undecidedApprovals: Set<Int> = []
    /// The commands and events of the current task, in order.
    package private(set) var newEvents: [(kind: HistoryEvent.Kind, timestamp: Date)] = []

    package struct CancelRequest: Sendable, Hashable {
        package var reason: String?
    }

    private struct ActivityWait {
        var wait: WaitID
        var activity: String
        var shielded: Bool
        var cancellation: ActivityCancellationType
        /// Whether the code cancelled it and waits for the activity to stop (`waitCancellationCompleted`).
        var cancelRequested = false
    }

    private struct SignalWaiter {
        var wait: WaitID
        var timerSeq: Int?
        /// Every name the wait is queued under.
        var names: [String]
    }

    private struct BufferedSignal {
        var arrival: Int
        var payload: Payload
        var requestID: String?
    }

    private enum TimerWait {
        case sleep(WaitID)
        case signalTimeout(names: [String], wait: WaitID)
    }

    /// A machine for a run whose history begins with `workflowStarted`, its commands recorded.
    /// - Throws: ``WorkflowTaskFailure`` when the history does not begin with `workflowStarted`.
    package init(history: [HistoryEvent], runID: String) throws {
        guard let first = history.first, case .workflowStarted(let type, let workflowID, _, _) = first.kind else {
            throw WorkflowTaskFailure(message: "history of run \(runID) does not begin with workflowStarted")
        }
        self.workflowType = type
        self.workflowID = workflowID
        self.currentTime = first.timestamp
        for event in history where event.kind.isCommand {
            switch event.kind {
            case .timerCancelled(let seq): recordedTimerCancellations.insert(seq)
            case .activityCancelRequested(let seq): recordedActivityCancellations.insert(seq)
            case .workflowCompleted, .workflowFailed, .workflowCancelled, .workflowCompensated,
                .workflowContinuedAsNew:
                recordedClosing = event.kind
            default: if let seq = event.kind.seq { recordedCommands[seq] = event.kind }
            }
        }
    }

    // MARK: - Events

    /// Applies an event that happened to the run at `timestamp` (from history when replaying).
    /// - Parameter isNew: whether the event is new to history (then it is recorded in ``newEvents``).
    /// - Returns: the waits it wakes, in the order to resume them.
    package mutating func apply(_ kind: HistoryEvent.Kind, at timestamp: Date, isNew: Bool) -> [Wake] {
        currentTime = isNew ? max(currentTime, timestamp) : timestamp
        if isNew { newEvents.append((kind, currentTime)) }
        switch kind {
        case .activityCompleted(let seq, let result, _):
            guard let wait = activityWaits.removeValue(forKey: seq) else {
                earlyActivityResults[seq] = kind
                return []
            }
            return [Wake(wait: wait.wait, value: .activityCompleted(result))]
        case .activityFailed(let seq, let failure, let attempts):
            guard let wait = activityWaits.removeValue(forKey: seq) else {
                earlyActivityResults[seq] = kind
                return []
            }
            let failure = ActivityFailure(activityName: wait.activity, cause: failure, attempts: attempts)
            return [Wake(wait: wait.wait, value: .activityFailed(failure))]
        case .activityCancelled(let seq):
            guard let wait = activityWaits.removeValue(forKey: seq) else {
                earlyActivityResults[seq] = kind
                return []
            }
            return [Wake(wait: wait.wait, value: .taskCancelled)]
        case .timerFired(let seq):
            switch timerWaits.removeValue(forKey: seq) {
            case .sleep(let wait): return [Wake(wait: wait, value: .timerFired)]
            case .signalTimeout(let names, let wait):
                guard removeSignalWaiter(wait, names: names) else { return [] }
                return [Wake(wait: wait, value: .signal(nil))]
            case nil: return []  // a timer whose wait ended otherwise (cancelled, or signalled first)
            }
        case .signalReceived(let name, let payload, let requestID):
            guard let waiter = signalWaiters[name]?.popFirst() else {
                signalBuffers[name, default: []].append(
                    BufferedSignal(arrival: signalArrivals, payload: payload, requestID: requestID))
                signalArrivals += 1
                return []
            }
            _ = removeSignalWaiter(waiter.wait, names: waiter.names.filter { $0 != name })
            if let timerSeq = waiter.timerSeq, timerWaits.removeValue(forKey: timerSeq) != nil {
                recordTimerCancellation(timerSeq)
            }
            return [Wake(wait: waiter.wait, value: .signal(ReceivedSignal(name: name, payload: payload)))]
        case .approvalDecided(let seq, let decision):
            undecidedApprovals.remove(seq)
            guard let wait = approvalWaits.removeValue(forKey: seq) else {
                earlyApprovalDecisions[seq] = decision
                return []
            }
            return [Wake(wait: wait, value: .approvalDecided(decision))]
        case .externalRequestDelivered(let seq, let runID):
            return wakeExternalRequest(seq, with: .externalRequestDelivered(runID: runID))
        case .externalRequestFailed(let seq, let failure):
            return wakeExternalRequest(seq, with: .externalRequestFailed(failure))
        case .childWorkflowStarted(let seq, let runID):
            return wakeChildStart(seq, with: .childStarted(runID: runID))
        case .childWorkflowStartFailed(let seq, let failure):
            return wakeChildStart(seq, with: .childStartFailed(failure))
        case .childWorkflowClosed(let seq, let runID, let status, let result, let failure):
            let closure = ChildClosure(runID: runID, status: status, result: result, failure: failure)
            guard let wait = childResultWaits.removeValue(forKey: seq) else {
                earlyChildClosures[seq] = closure
                return []
            }
            return [Wake(wait: wait, value: .childClosed(closure))]
        case .compensationRetryRequested:
            guard let wait = compensationRetryWait else {
                unclaimedCompensationRetries += 1
                return []
            }
            compensationRetryWait = nil
            return [Wake(wait: wait, value: .compensationRetry)]
        case .cancelRequested(let reason):
            guard cancelRequest == nil else { return [] }
            cancelRequest = CancelRequest(reason: reason)
            return cancelWaits(reason: reason)
        case .workflowStarted, .activityScheduled, .activityCancelRequested, .timerStarted, .timerCancelled,
            .markerRecorded, .approvalRequested, .externalSignalRequested, .externalCancelRequested,
            .compensationStarted, .compensationFailed, .childWorkflowRequested, .stageChanged,
            .searchAttributesUpserted, .workflowCompleted, .workflowFailed, .workflowCancelled, .workflowTerminated,
            .workflowCompensated,
            .workflowContinuedAsNew:
            return []  // commands and closings: the code's own, or the end of the run
        }
    }

    private mutating func wakeChildStart(_ seq: Int, with value: WakeValue) -> [Wake] {
        guard let wait = childStartWaits.removeValue(forKey: seq) else {
            earlyChildStarts[seq] = value
            return []
        }
        return [Wake(wait: wait, value: value)]
    }

    private mutating func wakeExternalRequest(_ seq: Int, with value: WakeValue) -> [Wake] {
        guard let wait = externalRequestWaits.removeValue(forKey: seq) else {
            earlyExternalOutcomes[seq] = value
            return []
        }
        return [Wake(wait: wait, value: value)]
    }

    /// Wakes every wait a cancellation ends — all but shielded activities (compensations) — in a
    /// fixed order (by sequence number, then signal name): dictionary order differs between
    /// processes, and the order decides what the code does next on replay.
    private mutating func cancelWaits(reason: String?) -> [Wake] {
        var wakes: [Wake] = []
        for (seq, wait) in activityWaits.sorted(by: { $0.key < $1.key }) where !wait.shielded {
            activityWaits[seq] = nil
            wakes.append(Wake(wait: wait.wait, value: .cancelled(reason: reason)))
        }
        for (_, wait) in timerWaits.sorted(by: { $0.key < $1.key }) {
            if case .sleep(let id) = wait { wakes.append(Wake(wait: id, value: .cancelled(reason: reason))) }
        }
        var wokenSignalWaits: Set<WaitID> = []
        for (_, waiters) in signalWaiters.sorted(by: { $0.key < $1.key }) {
            for waiter in waiters where wokenSignalWaits.insert(waiter.wait).inserted {
                wakes.append(Wake(wait: waiter.wait, value: .cancelled(reason: reason)))
            }
        }
        for waits in [approvalWaits, externalRequestWaits, childStartWaits, childResultWaits] {
            wakes += waits.sorted(by: { $0.key < $1.key }).map {
                Wake(wait: $0.value, value: .cancelled(reason: reason))
            }
        }
        timerWaits.removeAll()
        signalWaiters.removeAll()
        approvalWaits.removeAll()
        externalRequestWaits.removeAll()
        childStartWaits.removeAll()
        childResultWaits.removeAll()
        return wakes
    }

    // MARK: - Operations

    /// Whether history already holds the command of the next operation.
    package var nextOperationIsRecorded: Bool { recordedCommands[nextSeq] != nil }

    package mutating func scheduleActivity(
        name: String, input: Payload, options: ActivityOptions, defaultKey: (Int) -> String,
        shielded: Bool
    ) -> Step {
        let seq = takeSeq()
        let command = HistoryEvent.Kind.activityScheduled(
            seq: seq, activity: name, input: input,
            idempotencyKey: options.idempotencyKey ?? defaultKey(seq), options: options)
        if let mismatch = issue(command) { return .nonDeterministic(message: mismatch.message) }
        switch earlyActivityResults.removeValue(forKey: seq) {
        case .activityCompleted(_, let result, _)?: return .ready(.activityCompleted(result))
        case .activityFailed(_, let failure, let attempts)?:
            return .ready(.activityFailed(ActivityFailure(activityName: name, cause: failure, attempts: attempts)))
        case .activityCancelled?: return .ready(.taskCancelled)
        default:
            let wait = takeWaitID()
            activityWaits[seq] = ActivityWait(
                wait: wait, activity: name, shielded: shielded, cancellation: options.cancellationType)
            return .wait(wait)
        }
    }

    /// Whether timer `seq` still waits to fire (a sleep, or a signal wait's timeout).
    package func awaitsTimer(_ seq: Int) -> Bool {
        timerWaits[seq] != nil
    }

    /// A durable sleep until `currentTime + seconds`.
    package mutating func startTimer(seconds: Double) -> Step {
        let seq = takeSeq()
        if let mismatch = issue(.timerStarted(seq: seq, fireAt: currentTime.addingTimeInterval(seconds))) {
            return .nonDeterministic(message: mismatch.message)
        }
        let wait = takeWaitID()
        timerWaits[seq] = .sleep(wait)
        return .wait(wait)
    }

    /// The next signal called any of `names`: the earliest that arrived unclaimed, or a wait (with
    /// a timeout timer when given).
    package mutating func waitForSignal(named names: [String], timeoutSeconds: Double?) -> Step {
        let buffered = names.compactMap { name in signalBuffers[name]?.first.map { (name, $0.arrival) } }
        if let (name, _) = buffered.min(by: { $0.1 < $1.1 }), let signal = signalBuffers[name]?.popFirst() {
            return .ready(.signal(ReceivedSignal(name: name, payload: signal.payload)))
        }
        var timerSeq: Int?
        if let timeoutSeconds {
            let seq = takeSeq()
            if let mismatch = issue(.timerStarted(seq: seq, fireAt: currentTime.addingTimeInterval(timeoutSeconds))) {
                return .nonDeterministic(message: mismatch.message)
            }
            timerSeq = seq
        }
        let wait = takeWaitID()
        for name in names {
            signalWaiters[name, default: []].append(SignalWaiter(wait: wait, timerSeq: timerSeq, names: names))
        }
        if let timerSeq { timerWaits[timerSeq] = .signalTimeout(names: names, wait: wait) }
        return .wait(wait)
    }

    /// The signals the run received and its code has not consumed, in the order they arrived
    /// (what a continue-as-new carries to the next run).
    package var unconsumedSignals: [CarriedSignal] {
        signalBuffers.flatMap { name, buffer in buffer.map { (name, $0) } }
            .sorted { $0.1.arrival < $1.1.arrival }
            .map { CarriedSignal(name: $0.0, payload: $0.1.payload, requestID: $0.1.requestID) }
    }

    /// The value of side effect `name` recorded by an earlier run of the code, if any.
    package var recordedSideEffect: (name: String, value: Payload)? {
        guard case .markerRecorded(_, let name, let value)? = recordedCommands[nextSeq] else { return nil }
        return (name, value)
    }

    /// Records a side effect's value (or checks it against the recorded one).
    package mutating func recordSideEffect(named name: String, value: Payload) -> NonDeterminism? {
        issue(.markerRecorded(seq: takeSeq(), name: name, value: value))
    }

    /// The version of change `changeID` this run takes (see ``WorkflowContext/version(_:minSupported:maxSupported:)``):
    /// the one its history recorded at this point; else, when the code is replaying past this
    /// point, ``WorkflowContext/defaultVersion`` (the run ran here before the change existed, and
    /// nothing is recorded, so later sequence numbers stay as they were); else `maxSupported`, recorded.
    /// - Returns: the version, or the message that blocks the run when the code no longer supports it.
    package mutating func version(changeID: String, minSupported: Int, maxSupported: Int) -> Result<Int, NonDeterminism>
    {
        let name = "version:\(changeID)"
        let version: Int
        if case .markerRecorded(_, let recordedName, let value)? = recordedCommands[nextSeq],
            recordedName.hasPrefix("version:")
        {
            if let mismatch = issue(.markerRecorded(seq: takeSeq(), name: name, value: value)) {
                return .failure(mismatch)
            }
            guard let recorded = try? value.decode(as: Int.self) else {
                return .failure(
                    NonDeterminism(message: "change '\(changeID)' recorded an unreadable version: \(value)"))
            }
            version = recorded
        } else if isReplaying {
            version = WorkflowContext.defaultVersion
        } else {
            _ = issue(.markerRecorded(seq: takeSeq(), name: name, value: Payload(json: "\(maxSupported)")))
            version = maxSupported
        }
        guard (minSupported...maxSupported).contains(version) else {
            return .failure(
                NonDeterminism(
                    message: "workflow '\(workflowType)' (id \(workflowID)): change '\(changeID)' is at version "
                        + "\(version) in this run, and the code supports versions \(minSupported)...\(maxSupported) "
                        + "only: keep the branch for version \(version) until no open run needs it"))
        }
        return .success(version)
    }

    /// Records an approval request built for its sequence number.
    /// - Returns: the request as recorded (an earlier run's, when replaying), or a non-determinism message.
    package mutating func requestApproval(
        _ makeRequest: (Int) -> ApprovalRequest
    ) -> Result<(seq: Int, request: ApprovalRequest), NonDeterminism> {
        let seq = takeSeq()
        let request = makeRequest(seq)
        undecidedApprovals.insert(seq)
        let recorded = recordedCommands[seq]
        if let mismatch = issue(.approvalRequested(seq: seq, request: request)) { return .failure(mismatch) }
        if case .approvalRequested(_, let recordedRequest)? = recorded { return .success((seq, recordedRequest)) }
        return .success((seq, request))
    }

    /// The decision on the approval of operation `seq`: one that arrived already, or a wait.
    package mutating func awaitDecision(ofApprovalAt seq: Int) -> Step {
        if let decision = earlyApprovalDecisions.removeValue(forKey: seq) { return .ready(.approvalDecided(decision)) }
        let wait = takeWaitID()
        approvalWaits[seq] = wait
        return .wait(wait)
    }

    /// Records a signal or cancellation for another workflow, built for its sequence number, and
    /// waits for the outcome of its delivery.
    package mutating func sendExternalRequest(_ makeCommand: (Int) -> HistoryEvent.Kind) -> Step {
        let seq = takeSeq()
        if let mismatch = issue(makeCommand(seq)) { return .nonDeterministic(message: mismatch.message) }
        if let outcome = earlyExternalOutcomes.removeValue(forKey: seq) { return .ready(outcome) }
        let wait = takeWaitID()
        externalRequestWaits[seq] = wait
        return .wait(wait)
    }

    /// Records the start of a child workflow, its command built for its sequence number, and
    /// waits for the outcome of the start.
    package mutating func startChild(_ makeCommand: (Int) -> HistoryEvent.Kind) -> (seq: Int, step: Step) {
        let seq = takeSeq()
        hasChildren = true
        if let mismatch = issue(makeCommand(seq)) { return (seq, .nonDeterministic(message: mismatch.message)) }
        if let outcome = earlyChildStarts.removeValue(forKey: seq) { return (seq, .ready(outcome)) }
        let wait = takeWaitID()
        childStartWaits[seq] = wait
        return (seq, .wait(wait))
    }

    /// The closing of the child workflow of operation `seq`: one that arrived already, or a wait.
    package mutating func awaitChildClosure(ofChildAt seq: Int) -> Step {
        if let closure = earlyChildClosures.removeValue(forKey: seq) { return .ready(.childClosed(closure)) }
        let wait = takeWaitID()
        childResultWaits[seq] = wait
        return .wait(wait)
    }

    /// Records a command that completes at once (a stage, search attributes), built for its
    /// sequence number. - Returns: the mismatch with history, or `nil`.
    package mutating func record(_ makeCommand: (Int) -> HistoryEvent.Kind) -> NonDeterminism? {
        issue(makeCommand(takeSeq()))
    }

    /// Records that the run's compensations start, after the code failed with `cause`.
    package mutating func startCompensation(cause: ErrorInfo) -> NonDeterminism? {
        issue(.compensationStarted(seq: takeSeq(), cause: cause))
    }

    /// Records that compensation `activity` failed for good; the run then waits for a retry.
    package mutating func recordCompensationFailure(activity: String, failure: ErrorInfo) -> NonDeterminism? {
        issue(.compensationFailed(seq: takeSeq(), activity: activity, failure: failure))
    }

    /// An operator's request to retry the failed compensation: one that arrived already, or a wait.
    package mutating func awaitCompensationRetry() -> Step {
        if unclaimedCompensationRetries > 0 {
            unclaimedCompensationRetries -= 1
            return .ready(.compensationRetry)
        }
        let wait = takeWaitID()
        compensationRetryWait = wait
        return .wait(wait)
    }

    /// The code cancelled the Swift task suspended in `wait`: the operation stops waiting (an
    /// activity as its ``ActivityCancellationType`` says), its timer is cancelled, and — unless an
    /// activity waits for its cancellation to complete — it is woken to throw `CancellationError`.
    package mutating func cancelWait(_ wait: WaitID) -> [Wake] {
        let woken = [Wake(wait: wait, value: .taskCancelled)]
        if let (seq, activity) = activityWaits.first(where: { $0.value.wait == wait }) {
            switch activity.cancellation {
            case .abandon:
                activityWaits[seq] = nil
            case .tryCancel:
                activityWaits[seq] = nil
                recordActivityCancellation(seq)
            case .waitCancellationCompleted:
                if !activity.cancelRequested {
                    activityWaits[seq]?.cancelRequested = true
                    recordActivityCancellation(seq)
                }
                return []
            }
            return woken
        }
        for (seq, timer) in timerWaits {
            if case .sleep(wait) = timer {
                timerWaits[seq] = nil
                recordTimerCancellation(seq)
                return woken
            }
        }
        for waiters in signalWaiters.values {
            guard let waiter = waiters.first(where: { $0.wait == wait }) else { continue }
            if let timerSeq = waiter.timerSeq, timerWaits.removeValue(forKey: timerSeq) != nil {
                recordTimerCancellation(timerSeq)
            }
            _ = removeSignalWaiter(wait, names: waiter.names)
            return woken
        }
        if let seq = approvalWaits.first(where: { $0.value == wait })?.key {
            approvalWaits[seq] = nil
            return woken
        }
        for waits in [\Self.externalRequestWaits, \Self.childStartWaits, \Self.childResultWaits] {
            if let seq = self[keyPath: waits].first(where: { $0.value == wait })?.key {
                self[keyPath: waits][seq] = nil
                return woken
            }
        }
        if compensationRetryWait == wait {
            compensationRetryWait = nil
            return woken
        }
        return []
    }

    // MARK: - Checks and output

    /// After replaying the whole history: a recorded operation the code never issued is a
    /// non-determinism. - Returns: its message, or `nil` when the code issued every one.
    package func unreplayedCommand() -> String? {
        if let missing = recordedCommands.min(by: { $0.key < $1.key })?.value {
            return nondeterminism(
                code: "no operation #\(missing.seq ?? 0) (the code never issued it)",
                recorded: missing.operationDescription)
        }
        if let seq = recordedTimerCancellations.min() {
            return nondeterminism(code: "no timer cancellation #\(seq)", recorded: "#\(seq) timer cancellation")
        }
        if let seq = recordedActivityCancellations.min() {
            return nondeterminism(code: "no activity cancellation #\(seq)", recorded: "#\(seq) activity cancellation")
        }
        return nil
    }

    /// For `worker replay`: whether the code's closing matches the recorded one. - Returns: a
    /// non-determinism message, or `nil`.
    package func closingMismatch(_ closing: HistoryEvent.Kind?) -> String? {
        guard let recordedClosing else { return nil }
        guard let closing else {
            return nondeterminism(
                code: "no completion (the code is still waiting)", recorded: recordedClosing.operationDescription)
        }
        guard closing.isSameOperation(as: recordedClosing) else {
            return nondeterminism(code: closing.operationDescription, recorded: recordedClosing.operationDescription)
        }
        return nil
    }

    /// Hands out the current task's events (with `closing` last, when given) and starts the next task's.
    package mutating func takeNewEvents(closing: HistoryEvent.Kind?) -> [(kind: HistoryEvent.Kind, timestamp: Date)] {
        if let closing { newEvents.append((closing, currentTime)) }
        defer { newEvents.removeAll(keepingCapacity: true) }
        return newEvents
    }

    /// A non-determinism found in an operation, as a value (``Result`` needs an `Error`).
    package struct NonDeterminism: Error, Hashable {
        package var message: String
    }

    // MARK: - Private

    private mutating func takeSeq() -> Int {
        defer { nextSeq += 1 }
        return nextSeq
    }

    private mutating func takeWaitID() -> WaitID {
        defer { nextWaitID += 1 }
        return nextWaitID
    }

    /// Records a command issued by the code; when replaying, checks it against the recorded one.
    /// - Returns: the mismatch, or `nil`.
    private mutating func issue(_ command: HistoryEvent.Kind) -> NonDeterminism? {
        if let seq = command.seq, let recorded = recordedCommands.removeValue(forKey: seq) {
            guard recorded.isSameOperation(as: command) else {
                return NonDeterminism(
                    message: nondeterminism(
                        code: command.operationDescription,
                        recorded: recorded.operationDescription))
            }
            return nil
        }
        newEvents.append((command, currentTime))
        return nil
    }

    /// Removes a signal wait from the queues of `names`. - Returns: whether it was queued.
    private mutating func removeSignalWaiter(_ wait: WaitID, names: [String]) -> Bool {
        var removed = false
        for name in names {
            guard let index = signalWaiters[name]?.firstIndex(where: { $0.wait == wait }) else { continue }
            signalWaiters[name]!.remove(at: index)
            if signalWaiters[name]!.isEmpty { signalWaiters[name] = nil }
            removed = true
        }
        return removed
    }

    private mutating func recordActivityCancellation(_ seq: Int) {
        if recordedActivityCancellations.remove(seq) == nil {
            newEvents.append((.activityCancelRequested(seq: seq), currentTime))
        }
    }

    private mutating func recordTimerCancellation(_ seq: Int) {
        if recordedTimerCancellations.remove(seq) == nil {
            newEvents.append((.timerCancelled(seq: seq), currentTime))
        }
    }

    private func nondeterminism(code: String, recorded: String) -> String {
        "non-deterministic workflow '\(workflowType)' (id \(workflowID)): the code issued \(code) where the "
            + "history has \(recorded)"
    }
}
