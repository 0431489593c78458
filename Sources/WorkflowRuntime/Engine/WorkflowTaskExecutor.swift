import DequeModule
import Synchronization

/// A serial executor owned by one run: it only queues jobs, and runs them when the engine drains it.
///
/// Workflow code runs as a task that prefers this executor, so `async let` children, task-group
/// children and resumed continuations all land in this one FIFO queue. The engine drains it after
/// each history event, which makes the order of workflow operations a function of the history.
final class WorkflowTaskExecutor: TaskExecutor, Sendable {
    private let jobs = Mutex<Deque<UnownedJob>>([])

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
    }

    /// Runs queued jobs, including those they enqueue, until the queue is empty or `limit` jobs ran.
    /// - Returns: the number of jobs run.
    @discardableResult
    func drain(limit: Int = .max) -> Int {
        var count = 0
        while count < limit, let job = jobs.withLock({ $0.popFirst() }) {
            job.runSynchronously(on: asUnownedTaskExecutor())
            count += 1
        }
        return count
    }
}
