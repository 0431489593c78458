/// What to tell waiters once a write has committed: work topics that gained work, runs that closed.
struct StoreNotifications: Sendable {
    var topics: Set<WorkNotifier.Topic> = []
    var closedRuns: [String] = []

    func deliver(to notifier: WorkNotifier) {
        for topic in topics { notifier.notify(topic) }
        for runID in closedRuns { notifier.runClosed(runID) }
    }
}
