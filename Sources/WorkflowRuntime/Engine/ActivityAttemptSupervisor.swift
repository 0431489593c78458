import Foundation
import Synchronization

/// Runs one activity attempt under the limits that end it early: its start-to-close timeout, its
/// heartbeat timeout (no heartbeat for that long), the loss of its lease (a heartbeat found that
/// another worker holds the attempt, or that its run closed), its workflow code's cancellation
/// (found by a heartbeat), and the end of a stopping worker's grace period. Whichever comes
/// first cancels the activity's task, and its reason becomes the attempt's error; so two attempts
/// of one side effect do not run on in parallel once this worker knows it lost the attempt.
/// Cancellation is cooperative: code that ignores it is waited for, and an outcome after a lost
/// lease is refused by the store's fencing.
///
/// Cost: one task per attempt, plus a watchdog task when the options set a timeout.
struct ActivityAttemptSupervisor {
    let clock: any WorkflowClock
    let shutdownGrace: ShutdownGrace
    let gracePeriod: Duration

    func run(
        _ context: ActivityContext, options: ActivityOptions,
        _ body: @escaping @Sendable () async throws -> Payload
    ) async throws -> Payload {
        let attempt = Task { try await body() }
        let stopReason = Mutex<(any Error)?>(nil)
        let stop: @Sendable (any Error) -> Void = { reason in
            let first = stopReason.withLock { current -> Bool in
                guard current == nil else { return false }
                current = reason
                return true
            }
            if first { attempt.cancel() }
        }
        context.onStopRequest { request in
            switch request {
            case .leaseLost:
                stop(
                    ApplicationError(
                        "the attempt's lease was lost: another worker took the attempt over, or its run closed",
                        type: "ActivityLeaseLost"))
            case .cancellationRequested: stop(ActivityCancellationRequested())
            }
        }
        let gracePeriod = self.gracePeriod
        let registration = shutdownGrace.register { stop(WorkerShutdownError(grace: gracePeriod)) }
        defer { shutdownGrace.unregister(registration) }
        let watchdog = Self.watchdog(context, options: options, clock: clock, stop: stop)
        defer { watchdog?.cancel() }

        let outcome = await withTaskCancellationHandler {
            await attempt.result
        } onCancel: {
            attempt.cancel()
        }
        if let reason = stopReason.withLock({ $0 }) { throw reason }
        return try outcome.get()
    }

    /// Stops the attempt when its start-to-close timeout passes or no heartbeat comes within its
    /// heartbeat timeout; `nil` when the options set neither.
    private static func watchdog(
        _ context: ActivityContext, options: ActivityOptions, clock: any WorkflowClock,
        stop: @escaping @Sendable (any Error) -> Void
    ) -> Task<Void, Never>? {
        let startToClose = options.startToCloseTimeout?.clampedToLongestAccepted
        let heartbeatTimeout = options.heartbeatTimeout?.clampedToLongestAccepted
        guard startToClose != nil || heartbeatTimeout != nil else { return nil }
        let started = clock.now()
        return Task {
            let closeBy = startToClose.map { started.addingTimeInterval($0.seconds) } ?? .distantFuture
            while !Task.isCancelled {
                let lastHeartbeat = context.lastHeartbeat
                let heartbeatBy =
                    heartbeatTimeout.map { lastHeartbeat.at.addingTimeInterval($0.seconds) } ?? .distantFuture
                do { try await clock.sleep(until: min(closeBy, heartbeatBy)) } catch { return }
                let now = clock.now()
                if let startToClose, now >= closeBy {
                    return stop(
                        ApplicationError("start-to-close timeout of \(startToClose) passed", type: "ActivityTimeout"))
                }
                if let heartbeatTimeout, now >= heartbeatBy, context.lastHeartbeat.count == lastHeartbeat.count {
                    return stop(
                        ApplicationError(
                            "heartbeat timeout of \(heartbeatTimeout) passed with no heartbeat", type: "ActivityTimeout"
                        ))
                }
            }
        }
    }
}

/// Ends an attempt whose workflow code cancelled the activity: reported as
/// ``ActivityReport/Outcome/cancelled``, never retried.
struct ActivityCancellationRequested: Error, CustomStringConvertible {
    var description: String { "the workflow cancelled the activity" }
}
