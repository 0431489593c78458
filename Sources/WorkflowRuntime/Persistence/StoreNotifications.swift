/// What to tell waiters once a write has committed: work topics that gained work, runs that closed.
package struct StoreNotifications: Sendable {
    package var topics: Set<WorkNotifier.Topic> = []
    package var closedRuns: [String] = []

    package init() {}

    package func deliver(to notifier: WorkNotifier) {
        for topic in topics { notifier.notify(topic) }
        for runID in closedRuns { notifier.runClosed(runID) }
    }
}
