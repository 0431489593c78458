/// What a start does when runs of its workflow id already exist. Whatever the policy, a start
/// never creates a second open run of an id: with an open run it returns that run
/// (``WorkflowHandle/created`` is `false`) — except ``terminateIfRunning``, which ends it first.
///
/// The policies judge the id's latest run, as Temporal's do.
public enum WorkflowIDReusePolicy: String, Sendable, Codable, CaseIterable {
    /// A closed id starts a new run, whatever its last run's outcome (the default).
    case allowDuplicate
    /// A closed id starts a new run only if its last run did not complete: it failed, was
    /// cancelled, terminated or compensated. After a completion the start is refused.
    case allowDuplicateFailedOnly
    /// An id that ever had a run is refused a new one (an open run is still returned).
    case rejectDuplicate
    /// An open run of the id is terminated, and the new run started, in one transaction.
    case terminateIfRunning

    /// Why this policy refuses a new run after a latest run in `status`, or `nil` if it allows one.
    func refusal(workflowID: String, latest status: RunStatus) -> String? {
        switch self {
        case .allowDuplicate, .terminateIfRunning: return nil
        case .allowDuplicateFailedOnly:
            guard status == .completed else { return nil }
            return "workflow '\(workflowID)' already completed, and the id reuse policy allowDuplicateFailedOnly "
                + "starts it again only after a failure, cancellation, termination or compensation"
        case .rejectDuplicate:
            return "workflow '\(workflowID)' already ran (its last run is \(status.rawValue)), and the id reuse "
                + "policy rejectDuplicate never starts an id twice"
        }
    }
}
