import Foundation

/// Runs one activity attempt under the limits that end it early: its start-to-close timeout, its
/// heartbeat timeout (no heartbeat for that long), the loss of its lease (a heartbeat found
/// that another worker holds the attempt, or that its run closed), and the end of a stopping
/// worker's grace period. Whichever comes first cancels
/// the activity's task, and its reason becomes the attempt's error; so two attempts of one side
/// effect do not run on in parallel once this worker knows it lost the attempt. Cancellation is
/// cooperative: code that ignores it is waited for, and an outcome after a lost lease is refused
/// by the store's fencing.
struct ActivityAttemptSupervisor {
    let clock: any WorkflowClock
    /// Ends when the worker stops and its grace period passes (then the attempt is given back).
    let shutdownGrace: ShutdownGrace
    let gracePeriod: Duration

    func run(_ context: ActivityContext, options: ActivityOptions,
             _ body: @escaping @Sendable () async throws -> Payload) async throws -> Payload {
        let clock = self.clock
        let shutdownGrace = self.shutdownGrace
        let gracePeriod = self.gracePeriod
        let startToClose = options.startToCloseTimeout?.clampedToLongestAccepted
        let heartbeatTimeout = options.heartbeatTimeout?.clampedToLongestAccepted
        return try await withThrowingTaskGroup(of: Payload.self) { group in
            group.addTask { try await body() }
            if let startToClose {
                group.addTask {
                    try await clock.sleep(for: startToClose)
                    throw ApplicationError("start-to-close timeout of \(startToClose) passed", type: "ActivityTimeout")
                }
            }
            if let heartbeatTimeout {
                group.addTask {
                    while true {
                        let lastHeartbeat = context.lastHeartbeatAt
                        try await clock.sleep(until: lastHeartbeat.addingTimeInterval(heartbeatTimeout.seconds))
                        if context.lastHeartbeatAt == lastHeartbeat {
                            throw ApplicationError("heartbeat timeout of \(heartbeatTimeout) passed with no heartbeat", type: "ActivityTimeout")
                        }
                    }
                }
            }
            group.addTask {
                try await context.waitUntilLeaseLost()
                throw ApplicationError("the attempt's lease was lost: another worker took the attempt over, or its run closed",
                                       type: "ActivityLeaseLost")
            }
            group.addTask {
                try await shutdownGrace.wait()
                throw WorkerShutdownError(grace: gracePeriod)
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw CancellationError() }
            return first
        }
    }
}
