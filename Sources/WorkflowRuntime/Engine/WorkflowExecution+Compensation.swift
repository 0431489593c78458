import Foundation

/// The compensations a run's code registered, newest last: activities that undo its steps.
struct CompensationStack {
    struct Compensation {
        var activity: String
        var input: Payload
        var options: ActivityOptions
    }

    private(set) var pending: [Compensation] = []
    /// Registrations so far, run or not: the next one's idempotency key.
    private var registered = 0

    var isEmpty: Bool { pending.isEmpty }

    /// Registers a compensation. Its idempotency key is fixed by its registration order, so a
    /// retried or replayed compensation keeps it.
    mutating func register(activity: String, input: Payload, options: ActivityOptions, keyPrefix: String) throws {
        try options.validate()
        var options = options
        if options.idempotencyKey == nil { options.idempotencyKey = "\(keyPrefix)/compensation/\(registered)" }
        registered += 1
        pending.append(Compensation(activity: activity, input: input, options: options))
    }

    mutating func removeNewest() {
        pending.removeLast()
    }
}

// The compensation runner (saga): a consumer of the replay state machine's operations.
extension WorkflowExecution {
    /// Registers an activity that undoes a step (see ``WorkflowContext/addCompensation(_:_:options:)``).
    func addCompensation(activity: String, input: Payload, options: ActivityOptions) throws {
        try compensations.register(
            activity: activity, input: input, options: options, keyPrefix: "\(info.workflowID)/\(info.runID)")
    }

    /// Runs the registered compensations, newest first, shielded from cancellation. A compensation
    /// that fails for good parks the run (`compensationFailed`) until an operator asks for a retry.
    func compensate(after cause: Error) async {
        do {
            try await recordCompensationStarted(cause: cause)
            while let compensation = compensations.pending.last {
                do {
                    _ = try await executeActivity(
                        name: compensation.activity, input: compensation.input,
                        options: compensation.options, shielded: true)
                    compensations.removeNewest()
                } catch let failure as ActivityFailure {
                    try await recordCompensationFailed(activity: compensation.activity, failure: failure.cause)
                    try await waitForCompensationRetry()
                }
            }
            compensated = true
            finish(.failure(cause))
        } catch {
            finish(.failure(error))  // evicted, or the task failed: nothing is recorded
        }
    }
}
