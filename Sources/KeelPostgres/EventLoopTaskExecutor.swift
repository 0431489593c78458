import NIOCore

/// A task executor that runs jobs on one SwiftNIO event loop.
///
/// Work on a pooled connection runs on that connection's event loop
/// (``ConnectionWatch/run(on:_:)``): a query's answer then resumes the waiting code on the thread
/// that read it, instead of waking a thread of Swift's cooperative pool, which saves two thread
/// hand-offs per statement. Work on a connection only composes statements and decodes rows, so it
/// keeps the event loop as free as PostgresNIO's own handlers do.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
