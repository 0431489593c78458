import Foundation

// Cron schedules: created, paused, triggered and backfilled by the client; fired by the workers.
extension WorkflowClient {
    /// Creates a schedule; workers fire it from its first tick after now.
    /// - Throws: ``KeelError`` `.scheduleExists`, `.invalidArgument` (an id or queue name that is
    ///   empty or holds control characters, an unknown time zone, a negative or longer than 100
    ///   years catch-up window or jitter, an end before the start, a schedule with no tick left),
    ///   `.unknownWorkflowType` or `.malformedInput` when the client has a registry.
    @discardableResult
    public func createSchedule(_ definition: ScheduleDefinition) async throws -> ScheduleRecord {
        try NameRules.check(definition.id, as: "the schedule id")
        if definition.id.contains("@") {
            throw KeelError(
                .invalidArgument,
                "the schedule id '\(definition.id)' must not hold '@' (it separates "
                    + "the schedule id from the tick in its runs' workflow ids)")
        }
        try NameRules.check(definition.workflowType, as: "the workflow type")
        try NameRules.check(definition.taskQueue, as: "the task queue name")
        if let note = definition.note { try NameRules.check(note, as: "the schedule note") }
        if let registry {
            try registry.validateStart(workflowType: definition.workflowType, input: definition.input)
        } else {
            try definition.input.validateJSON()
        }
        _ = try definition.catchupWindow.checked("the catch-up window")
        _ = try definition.jitter.checked("the jitter")
        let zone = try definition.zone()
        if let startAt = definition.startAt, let endAt = definition.endAt, endAt < startAt {
            throw KeelError(
                .invalidArgument,
                "the schedule ends (\(endAt.formatted(.iso8601))) before it starts "
                    + "(\(startAt.formatted(.iso8601)))")
        }
        guard definition.nextTick(after: clock.now(), in: zone) != nil else {
            throw KeelError(
                .invalidArgument, "schedule '\(definition.id)' has no tick left after now (its end has passed)")
        }
        return try await store.createSchedule(definition, now: clock.now())
    }

    /// - Throws: ``KeelError`` `.scheduleNotFound`.
    public func schedule(_ id: String) async throws -> ScheduleRecord {
        guard let record = try await store.schedule(id: id) else { throw SQLWorkflowStore.scheduleNotFound(id) }
        return record
    }

    /// Every schedule, by id.
    public func schedules() async throws -> [ScheduleRecord] {
        try await store.listSchedules()
    }

    /// Stops firing the schedule, recording why. - Throws: ``KeelError`` `.scheduleNotFound`.
    @discardableResult
    public func pauseSchedule(_ id: String, note: String? = nil) async throws -> ScheduleRecord {
        if let note { try NameRules.check(note, as: "the pause note") }
        return try await store.setSchedulePaused(id: id, paused: true, note: note, now: clock.now())
    }

    /// Fires the schedule again from its next tick after now (ticks while it was paused are not
    /// fired). - Throws: ``KeelError`` `.scheduleNotFound`.
    @discardableResult
    public func resumeSchedule(_ id: String) async throws -> ScheduleRecord {
        try await store.setSchedulePaused(id: id, paused: false, note: nil, now: clock.now())
    }

    /// - Throws: ``KeelError`` `.scheduleNotFound`.
    public func deleteSchedule(_ id: String) async throws {
        try await store.deleteSchedule(id: id)
    }

    /// Fires a tick now, honouring the schedule's overlap policy. - Throws: ``KeelError`` `.scheduleNotFound`.
    @discardableResult
    public func triggerSchedule(_ id: String) async throws -> ScheduleTickOutcome {
        try await store.triggerSchedule(id: id, now: clock.now())
    }

    /// Fires every tick from `from` to `to` (both included), as if the schedule had run then;
    /// ticks whose run already exists are skipped.
    /// - Parameter overlap: how a tick treats an open run of the schedule (default: start anyway).
    /// - Throws: ``KeelError`` `.scheduleNotFound`, `.invalidArgument` (`to` before `from`, more than 10,000 ticks).
    @discardableResult
    public func backfillSchedule(
        _ id: String, from: Date, to: Date, overlap: ScheduleOverlapPolicy = .allowAll
    ) async throws -> [ScheduleTickOutcome] {
        guard from <= to else {
            throw KeelError(
                .invalidArgument,
                "the backfill's end (\(to.formatted(.iso8601))) is before its start "
                    + "(\(from.formatted(.iso8601)))")
        }
        return try await store.backfillSchedule(id: id, from: from, to: to, overlap: overlap, now: clock.now())
    }
}
