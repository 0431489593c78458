/// Work whose outcome a commit of the sticky fast path carries in: its rows are deleted by the
/// commit's own writes, required (``SQLStatement/isRequired``), so the commit stands only if the
/// work was still this worker's to take.
enum TakenWork {
    /// An activity attempt that finished, under its lease
    /// (``WorkflowStore/reportActivityAndContinue(_:continuation:)``).
    case activity(ActivityReport)
    /// Timers of the run that this worker fired itself (``WorkflowStore/fireTimersAndContinue(_:continuation:)``):
    /// no other worker's timer pass has fired them.
    case timers([Int])

    var activitySeq: Int? {
        if case .activity(let report) = self { return report.seq }
        return nil
    }

    var timerSeqs: [Int] {
        if case .timers(let seqs) = self { return seqs }
        return []
    }
}

extension SQLWorkflowStore {
    /// The required deletes of `taken`'s rows, for a commit's writes.
    func takingStatements(_ taken: TakenWork, runID: String) -> [SQLStatement] {
        switch taken {
        case .activity(let report):
            [takingLeasedActivity(report)]
        case .timers(let seqs):
            seqs.map {
                SQLStatement(
                    "DELETE FROM timers WHERE run_id = ? AND seq = ?\(dialect.countingChanges)",
                    [.text(runID), .int(Int64($0))], isRequired: true)
            }
        }
    }
}
