import Foundation
import HeapModule
import Synchronization

/// The timers a worker owns (``WorkflowTaskCompletion/timerOwner``), by when they fire: started by
/// runs it ran, which it keeps in memory. The worker's owned-timer loop fires each when due
/// (``WorkflowEngine/fireOwnedTimers(_:runID:)``), continuing the run in memory, instead of
/// leaving it to a timer pass, a claim and a replay. Timers beyond ``capacity`` are not kept
/// here: the timer passes fire those ``timerOwnerGrace`` late.
final class OwnedTimers: Sendable {
    private struct Entry: Comparable {
        var fireAt: Date
        var runID: String
        var seq: Int

        static func < (lhs: Entry, rhs: Entry) -> Bool {
            (lhs.fireAt, lhs.runID, lhs.seq) < (rhs.fireAt, rhs.runID, rhs.seq)
        }
    }

    /// A million timers: about a hundred megabytes at most.
    static let defaultCapacity = 1_000_000

    let capacity: Int
    private let entries = Mutex(Heap<Entry>())
    /// Wakes the owned-timer loop when a timer comes due before the one it sleeps for, or on stop.
    let wakeUps = WorkNotifier()

    init(capacity: Int) {
        self.capacity = capacity
    }

    func add(runID: String, seq: Int, fireAt: Date) {
        let isEarliest = entries.withLock { entries -> Bool in
            guard entries.count < capacity else { return false }
            let entry = Entry(fireAt: fireAt, runID: runID, seq: seq)
            entries.insert(entry)
            return entries.min == entry
        }
        if isEarliest { wakeUps.notify(.timers) }
    }

    /// When the earliest timer kept here fires.
    var earliest: Date? {
        entries.withLock { $0.min?.fireAt }
    }

    /// Removes and returns the timers due at `now`, by run, each run's by sequence number.
    func takeDue(at now: Date) -> [String: [Int]] {
        var due = entries.withLock { entries in
            var due: [String: [Int]] = [:]
            while let first = entries.min, first.fireAt <= now {
                entries.removeMin()
                due[first.runID, default: []].append(first.seq)
            }
            return due
        }
        for runID in due.keys { due[runID]?.sort() }
        return due
    }

    func removeAll() {
        entries.withLock { $0 = Heap() }
    }
}
