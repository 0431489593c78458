import Dispatch
import Synchronization

/// Runs async code to completion on the calling thread, blocking it meanwhile.
///
/// SQLite's connection (a GRDB `Database`) may only be used inside the closure GRDB runs on its
/// writer (or reader) queue, synchronously; the store core is async, because PostgreSQL's client
/// is. Inside that closure, the core's code runs as a task that prefers this executor, and the
/// thread runs the task's jobs itself until it finishes — every statement on the connection's
/// own thread. The task starts at once on this thread (`Task.immediate`) and, as the core awaits
/// only the SQLite connection, which never suspends, normally finishes before `run` waits at all.
///
/// The caller's thread is GRDB's dispatch queue, never one of Swift concurrency's threads.
final class ThreadConfinedTask: TaskExecutor, @unchecked Sendable {
    // @unchecked: `jobs` is guarded by its mutex; the semaphore counts the queued jobs.
    private let jobs = Mutex<[UnownedJob]>([])
    private let available = DispatchSemaphore(value: 0)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
        available.signal()
    }

    /// Runs `body` on this thread and returns its result.
    static func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let executor = ThreadConfinedTask()
        let outcome = Mutex<Result<T, any Error>?>(nil)
        Task.immediate(executorPreference: executor) {
            let result = await Result(catching: body)
            outcome.withLock { $0 = result }
        }
        while true {
            if let result = outcome.withLock({ $0 }) { return try result.get() }
            executor.available.wait()
            guard let job = executor.jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
            job.runSynchronously(on: executor.asUnownedTaskExecutor())
        }
    }
}

extension Result where Failure == any Error {
    /// The outcome of an async throwing closure.
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
