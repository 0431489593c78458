import Foundation

/// What a tick does when the run its schedule started last is still open.
public enum ScheduleOverlapPolicy: String, Sendable, Hashable, Codable, CaseIterable {
    /// The tick is skipped (counted in ``ScheduleRecord/skippedCount``). The default.
    case skip
    /// The tick waits until the open run closes, then starts; a later tick while one waits is skipped.
    case bufferOne
    /// The tick starts its run anyway.
    case allowAll
    /// The open run is asked to cancel and the tick's run starts.
    case cancelPrevious
    /// The open run is terminated and the tick's run starts.
    case terminatePrevious
}

/// A cron schedule that starts a workflow on every tick (see ``WorkflowClient/createSchedule(_:)``).
///
/// Each tick starts its run with a deterministic workflow id, `SCHEDULE-ID@TICK` (the tick in
/// ISO-8601 UTC), in the transaction that advances the schedule — so however many workers run,
/// a tick starts its run once. The run carries the search attributes `scheduleID` (string) and
/// `scheduledTime` (date).
public struct ScheduleDefinition: Sendable, Hashable {
    public var id: String
    public var cron: CronExpression
    /// An IANA time zone identifier, e.g. `Australia/Sydney`.
    public var timeZone: String
    public var workflowType: String
    public var input: Payload
    public var taskQueue: String
    public var overlap: ScheduleOverlapPolicy
    /// Ticks missed while no worker ran are still fired if they are at most this old; older ones
    /// are counted as missed.
    public var catchupWindow: Duration
    /// Each tick's run starts up to this much later than the tick, by an amount fixed per tick.
    public var jitter: Duration
    public var note: String?
    /// No tick before this time.
    public var startAt: Date?
    /// No tick after this time.
    public var endAt: Date?

    public init(
        id: String, cron: CronExpression, timeZone: String = "UTC", workflowType: String, input: Payload = .emptyObject,
        taskQueue: String = TaskQueue.default, overlap: ScheduleOverlapPolicy = .skip,
        catchupWindow: Duration = .seconds(3600), jitter: Duration = .zero, note: String? = nil,
        startAt: Date? = nil, endAt: Date? = nil
    ) {
        self.id = id; self.cron = cron; self.timeZone = timeZone; self.workflowType = workflowType
        self.input = input; self.taskQueue = taskQueue; self.overlap = overlap; self.catchupWindow = catchupWindow
        self.jitter = jitter; self.note = note; self.startAt = startAt; self.endAt = endAt
    }

    /// The zone, or an error naming the identifier.
    func zone() throws -> TimeZone {
        guard let zone = TimeZone(identifier: timeZone) else {
            throw KeelError(
                .invalidArgument,
                "unknown time zone '\(timeZone)': use an IANA identifier such as UTC or Australia/Sydney")
        }
        return zone
    }

    /// The first tick strictly after `date` within the schedule's start and end, or `nil`.
    func nextTick(after date: Date, in zone: TimeZone) -> Date? {
        var cursor = date
        if let startAt, cursor < startAt { cursor = startAt.addingTimeInterval(-0.001) }
        guard let tick = cron.nextFire(after: cursor, in: zone) else { return nil }
        if let endAt, tick > endAt { return nil }
        return tick
    }

    /// The workflow id of the run a tick starts (`SCHEDULE@TICK`, the tick in ISO 8601 UTC).
    ///
    /// Cron ticks fall on whole seconds and read `daily@2027-01-15T02:00:00Z`; a tick of
    /// `worker schedule trigger` is the moment of the trigger and keeps its milliseconds, so two
    /// triggers within one second start two runs.
    public static func workflowID(scheduleID: String, tick: Date) -> String {
        let wholeSecond = tick.timeIntervalSinceReferenceDate.rounded(.down) == tick.timeIntervalSinceReferenceDate
        let format = Date.ISO8601FormatStyle(includingFractionalSeconds: !wholeSecond)
        return "\(scheduleID)@\(tick.formatted(format))"
    }

    /// A tick's start delay within ``jitter``: the same for the same tick on every worker.
    func jitterDelay(for tick: Date) -> Double {
        guard jitter > .zero else { return 0 }
        var random = WorkflowRandom(seed: "\(id)@\(tick.timeIntervalSince1970)")
        return Double.random(in: 0...jitter.seconds, using: &random)
    }
}

/// A schedule as stored, with what it did.
public struct ScheduleRecord: Sendable, Hashable {
    public var definition: ScheduleDefinition
    public var paused: Bool
    /// Why it was paused (or created paused).
    public var pauseNote: String?
    public var firedCount: Int
    public var skippedCount: Int
    /// Ticks older than the catch-up window when a worker came to them.
    public var missedCount: Int
    public var lastFireAt: Date?
    /// `nil` once the schedule has no tick left (past its end).
    public var nextFireAt: Date?
    /// The workflow id of the run it started last.
    public var lastWorkflowID: String?
    /// A tick waiting for the open run to close (overlap policy `bufferOne`).
    public var bufferedTick: Date?
    public var createdAt: Date
}

/// What one tick did.
public enum ScheduleTickOutcome: Sendable, Hashable {
    case started(workflowID: String, runID: String)
    /// Skipped by the overlap policy, or the tick's run already exists.
    case skipped(tick: Date)
    /// Waits for the open run to close (`bufferOne`).
    case buffered(tick: Date)
}
