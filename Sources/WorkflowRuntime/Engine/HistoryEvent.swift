import Foundation

/// One entry of a run's append-only history.
///
/// Events are written by the workflow task that observed or produced them, so replaying a run's
/// code against them in order yields the same commands.
public struct HistoryEvent: Sendable, Hashable, Codable {
    /// 1-based position in the run's history.
    public var id: Int
    public var timestamp: Date
    public var kind: Kind

    public init(id: Int, timestamp: Date, kind: Kind) {
        self.id = id
        self.timestamp = timestamp
        self.kind = kind
    }

    /// What happened. Cases with a `seq` belong to the workflow operation with that sequence number.
    public enum Kind: Sendable, Hashable {
        /// The run started; a child workflow's names its parent.
        case workflowStarted(
            workflowType: String, workflowID: String, input: Payload, parent: ParentWorkflowInfo? = nil)
        case activityScheduled(
            seq: Int, activity: String, input: Payload, idempotencyKey: String, options: ActivityOptions)
        case activityCompleted(seq: Int, result: Payload, attempt: Int)
        case activityFailed(seq: Int, failure: ErrorInfo, attempts: Int)
        /// The code cancelled the task awaiting activity `seq` (modes `tryCancel`, `waitCancellationCompleted`).
        case activityCancelRequested(seq: Int)
        /// Activity `seq` stopped on the request: its attempt acknowledged it, or none was running.
        case activityCancelled(seq: Int)
        case timerStarted(seq: Int, fireAt: Date)
        case timerFired(seq: Int)
        case timerCancelled(seq: Int)
        case markerRecorded(seq: Int, name: String, value: Payload)
        case signalReceived(name: String, payload: Payload, requestID: String?)
        case cancelRequested(reason: String?)
        case approvalRequested(seq: Int, request: ApprovalRequest)
        case approvalDecided(seq: Int, decision: ApprovalDecision)
        /// The code sent signal `signal` to the open run of `workflowID`; it is delivered in the
        /// transaction that records this command, so it is sent once however often the code replays.
        case externalSignalRequested(seq: Int, workflowID: String, signal: String, payload: Payload)
        /// The code asked for the open run of `workflowID` to be cancelled (delivered as a signal is).
        case externalCancelRequested(seq: Int, workflowID: String, reason: String?)
        /// The request of operation `seq` reached run `runID`.
        case externalRequestDelivered(seq: Int, runID: String)
        /// The request of operation `seq` found no open run to deliver to (see ``ExternalWorkflowError``).
        case externalRequestFailed(seq: Int, failure: ErrorInfo)
        /// The code started child workflow `workflowID`; the commit that records this starts it.
        case childWorkflowRequested(
            seq: Int, workflowType: String, workflowID: String, input: Payload, options: ChildWorkflowOptions)
        /// The child of operation `seq` started as run `runID`.
        case childWorkflowStarted(seq: Int, runID: String)
        /// The child of operation `seq` could not start (its id has an open run that is not this child).
        case childWorkflowStartFailed(seq: Int, failure: ErrorInfo)
        /// The child of operation `seq` closed: its last run (after any continue-as-new), how, and
        /// its result or failure (a cancellation or termination as a failure of type
        /// `WorkflowCancelled` / `WorkflowTerminated`).
        case childWorkflowClosed(seq: Int, runID: String, status: RunStatus, result: Payload?, failure: ErrorInfo?)
        /// The code set the run's stage (``WorkflowContext/setStage(_:)``).
        case stageChanged(seq: Int, stage: String)
        /// The code set search attributes; an empty keyword list removes one.
        case searchAttributesUpserted(seq: Int, attributes: [String: SearchAttributeValue])
        /// The code failed (or was cancelled) with compensations registered; they run now, in reverse.
        case compensationStarted(seq: Int, cause: ErrorInfo)
        /// A compensation failed for good; the run waits for an operator's retry.
        case compensationFailed(seq: Int, activity: String, failure: ErrorInfo)
        /// An operator asked to retry the failed compensation.
        case compensationRetryRequested(requestedBy: String?)
        case workflowCompleted(result: Payload)
        case workflowFailed(failure: ErrorInfo)
        case workflowCancelled(reason: String?)
        case workflowTerminated(reason: String)
        /// The run failed or was cancelled and every registered compensation ran.
        case workflowCompensated(cause: ErrorInfo)
        /// The code continued as new: this run closes and run `runID` of the same workflow id
        /// starts with `input`, in the same transaction; the signals this run received and its
        /// code did not consume go to the new run's inbox, in the order they arrived.
        case workflowContinuedAsNew(input: Payload, runID: String, signals: [CarriedSignal])

        /// The stable name stored in the `kind` column and shown in timelines.
        public var name: String {
            switch self {
            case .workflowStarted: "workflowStarted"
            case .activityScheduled: "activityScheduled"
            case .activityCompleted: "activityCompleted"
            case .activityFailed: "activityFailed"
            case .activityCancelRequested: "activityCancelRequested"
            case .activityCancelled: "activityCancelled"
            case .timerStarted: "timerStarted"
            case .timerFired: "timerFired"
            case .timerCancelled: "timerCancelled"
            case .markerRecorded: "markerRecorded"
            case .signalReceived: "signalReceived"
            case .cancelRequested: "cancelRequested"
            case .approvalRequested: "approvalRequested"
            case .approvalDecided: "approvalDecided"
            case .externalSignalRequested: "externalSignalRequested"
            case .externalCancelRequested: "externalCancelRequested"
            case .externalRequestDelivered: "externalRequestDelivered"
            case .externalRequestFailed: "externalRequestFailed"
            case .childWorkflowRequested: "childWorkflowRequested"
            case .childWorkflowStarted: "childWorkflowStarted"
            case .childWorkflowStartFailed: "childWorkflowStartFailed"
            case .childWorkflowClosed: "childWorkflowClosed"
            case .stageChanged: "stageChanged"
            case .searchAttributesUpserted: "searchAttributesUpserted"
            case .compensationStarted: "compensationStarted"
            case .compensationFailed: "compensationFailed"
            case .compensationRetryRequested: "compensationRetryRequested"
            case .workflowCompensated: "workflowCompensated"
            case .workflowCompleted: "workflowCompleted"
            case .workflowFailed: "workflowFailed"
            case .workflowCancelled: "workflowCancelled"
            case .workflowTerminated: "workflowTerminated"
            case .workflowContinuedAsNew: "workflowContinuedAsNew"
            }
        }

        /// The operation sequence number, for events tied to one operation.
        public var seq: Int? {
            switch self {
            case .activityScheduled(let seq, _, _, _, _), .activityCompleted(let seq, _, _),
                .activityFailed(let seq, _, _), .activityCancelRequested(let seq), .activityCancelled(let seq),
                .timerStarted(let seq, _), .timerFired(let seq),
                .timerCancelled(let seq), .markerRecorded(let seq, _, _), .approvalRequested(let seq, _),
                .approvalDecided(let seq, _), .compensationStarted(let seq, _), .compensationFailed(let seq, _, _),
                .externalSignalRequested(let seq, _, _, _), .externalCancelRequested(let seq, _, _),
                .externalRequestDelivered(let seq, _), .externalRequestFailed(let seq, _),
                .childWorkflowRequested(let seq, _, _, _, _), .childWorkflowStarted(let seq, _),
                .childWorkflowStartFailed(let seq, _), .childWorkflowClosed(let seq, _, _, _, _),
                .stageChanged(let seq, _), .searchAttributesUpserted(let seq, _):
                seq
            case .workflowStarted, .signalReceived, .cancelRequested, .compensationRetryRequested, .workflowCompleted,
                .workflowFailed, .workflowCancelled, .workflowTerminated, .workflowCompensated, .workflowContinuedAsNew:
                nil
            }
        }

        /// Events the workflow code produces (and replay must reproduce), as opposed to events
        /// that happen to the run (completions, timer fires, signals, cancellation).
        public var isCommand: Bool {
            switch self {
            case .activityScheduled, .activityCancelRequested, .timerStarted, .timerCancelled, .markerRecorded,
                .approvalRequested, .externalSignalRequested, .externalCancelRequested, .compensationStarted,
                .compensationFailed, .childWorkflowRequested, .stageChanged, .searchAttributesUpserted,
                .workflowCompleted, .workflowFailed, .workflowCancelled, .workflowCompensated, .workflowContinuedAsNew:
                true
            case .workflowStarted, .activityCompleted, .activityFailed, .activityCancelled, .timerFired,
                .signalReceived,
                .cancelRequested, .approvalDecided, .externalRequestDelivered, .externalRequestFailed,
                .compensationRetryRequested, .workflowTerminated, .childWorkflowStarted, .childWorkflowStartFailed,
                .childWorkflowClosed:
                false
            }
        }

        /// Whether the event closes the run.
        public var isClosing: Bool {
            switch self {
            case .workflowCompleted, .workflowFailed, .workflowCancelled, .workflowTerminated, .workflowCompensated,
                .workflowContinuedAsNew:
                true
            case .workflowStarted, .activityScheduled, .activityCompleted, .activityFailed, .activityCancelRequested,
                .activityCancelled, .timerStarted, .timerFired, .timerCancelled, .markerRecorded, .signalReceived,
                .cancelRequested, .approvalRequested,
                .approvalDecided, .externalSignalRequested, .externalCancelRequested, .externalRequestDelivered,
                .externalRequestFailed, .compensationStarted, .compensationFailed, .compensationRetryRequested,
                .childWorkflowRequested, .childWorkflowStarted, .childWorkflowStartFailed, .childWorkflowClosed,
                .stageChanged, .searchAttributesUpserted:
                false
            }
        }

        /// A short description of the operation, used in non-determinism messages.
        var operationDescription: String {
            switch self {
            case .activityScheduled(let seq, let activity, _, _, _): "#\(seq) activity '\(activity)'"
            case .timerStarted(let seq, _): "#\(seq) timer"
            case .timerCancelled(let seq): "#\(seq) timer cancellation"
            case .activityCancelRequested(let seq): "#\(seq) activity cancellation"
            case .markerRecorded(let seq, let name, _): "#\(seq) marker '\(name)'"
            case .approvalRequested(let seq, let request): "#\(seq) approval request '\(request.name)'"
            case .externalSignalRequested(let seq, let workflowID, let signal, _):
                "#\(seq) signal '\(signal)' to workflow '\(workflowID)'"
            case .externalCancelRequested(let seq, let workflowID, _):
                "#\(seq) cancellation of workflow '\(workflowID)'"
            case .childWorkflowRequested(let seq, let type, let workflowID, _, _):
                "#\(seq) child workflow '\(type)' (id \(workflowID))"
            case .stageChanged(let seq, let stage): "#\(seq) stage '\(stage)'"
            case .searchAttributesUpserted(let seq, let attributes):
                "#\(seq) search attributes \(attributes.keys.sorted().joined(separator: ", "))"
            case .compensationStarted(let seq, _): "#\(seq) start of compensation"
            case .compensationFailed(let seq, let activity, _): "#\(seq) failure of compensation '\(activity)'"
            case .workflowCompensated: "workflow compensation"
            case .workflowCompleted: "workflow completion"
            case .workflowFailed: "workflow failure"
            case .workflowCancelled: "workflow cancellation"
            case .workflowContinuedAsNew: "continue-as-new"
            case .workflowStarted, .activityCompleted, .activityFailed, .activityCancelled, .timerFired,
                .signalReceived,
                .cancelRequested, .approvalDecided, .externalRequestDelivered, .externalRequestFailed,
                .compensationRetryRequested, .childWorkflowStarted, .childWorkflowStartFailed, .childWorkflowClosed,
                .workflowTerminated:
                name
            }
        }

        /// Whether two commands are the same operation (kind, sequence and name; inputs may differ).
        /// Any pair not listed is a different operation, so a new command kind left out here is
        /// reported as non-determinism rather than silently accepted.
        func isSameOperation(as other: Kind) -> Bool {
            switch (self, other) {
            case (.activityScheduled(let a, let nameA, _, _, _), .activityScheduled(let b, let nameB, _, _, _)):
                a == b && nameA == nameB
            case (.timerStarted(let a, _), .timerStarted(let b, _)): a == b
            case (.timerCancelled(let a), .timerCancelled(let b)): a == b
            case (.activityCancelRequested(let a), .activityCancelRequested(let b)): a == b
            case (.markerRecorded(let a, let nameA, _), .markerRecorded(let b, let nameB, _)):
                a == b && nameA == nameB
            case (.approvalRequested(let a, let requestA), .approvalRequested(let b, let requestB)):
                a == b && requestA.name == requestB.name
            case (
                .externalSignalRequested(let a, let targetA, let nameA, _),
                .externalSignalRequested(let b, let targetB, let nameB, _)
            ):
                a == b && targetA == targetB && nameA == nameB
            case (.externalCancelRequested(let a, let targetA, _), .externalCancelRequested(let b, let targetB, _)):
                a == b && targetA == targetB
            case (
                .childWorkflowRequested(let a, let typeA, let idA, _, _),
                .childWorkflowRequested(let b, let typeB, let idB, _, _)
            ):
                a == b && typeA == typeB && idA == idB
            case (.stageChanged(let a, _), .stageChanged(let b, _)): a == b
            case (.searchAttributesUpserted(let a, _), .searchAttributesUpserted(let b, _)): a == b
            case (.compensationStarted(let a, _), .compensationStarted(let b, _)): a == b
            case (.compensationFailed(let a, let nameA, _), .compensationFailed(let b, let nameB, _)):
                a == b && nameA == nameB
            case (.workflowCompleted, .workflowCompleted), (.workflowFailed, .workflowFailed),
                (.workflowCancelled, .workflowCancelled), (.workflowCompensated, .workflowCompensated),
                (.workflowContinuedAsNew, .workflowContinuedAsNew):
                true
            default: false
            }
        }
    }
}

/// A signal a run received and its code did not consume before it continued as new: it moves to
/// the next run's inbox, keeping its request id.
public struct CarriedSignal: Sendable, Hashable, Codable {
    public var name: String
    public var payload: Payload
    public var requestID: String?

    public init(name: String, payload: Payload, requestID: String?) {
        self.name = name
        self.payload = payload
        self.requestID = requestID
    }
}

/// The parent of a child workflow, as its code sees it (``WorkflowInfo/parent``).
public struct ParentWorkflowInfo: Sendable, Hashable, Codable {
    public var workflowID: String
    public var runID: String

    public init(workflowID: String, runID: String) {
        self.workflowID = workflowID
        self.runID = runID
    }
}
