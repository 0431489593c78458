/// What to tell waiters once a write has committed: work topics that gained work, runs that closed.
package struct StoreNotifications: Sendable {
    package var topics: Set<WorkNotifier.Topic> = []
    package var closedRuns: [String] = []
    /// The results of the closed runs that completed: handed to this process's waiters (other
    /// processes hear of the close only, and read the run).
    package var results: [String: Payload] = [:]

    package init() {}

    /// Adds what `other` notifies (for writes committed in one transaction).
    package mutating func formUnion(_ other: StoreNotifications) {
        topics.formUnion(other.topics)
        closedRuns += other.closedRuns
        results.merge(other.results) { $1 }
    }

    package func deliver(to notifier: WorkNotifier) {
        for topic in topics { notifier.notify(topic) }
        for runID in closedRuns { notifier.runClosed(runID, result: results[runID]) }
    }
}
