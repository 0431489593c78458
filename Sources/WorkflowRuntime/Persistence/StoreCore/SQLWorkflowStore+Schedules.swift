import Foundation

// Cron schedules: stored with their counts, fired by the workers. Each schedule is advanced in
// one transaction that starts its ticks' runs, under its row lock (PostgreSQL: claimers skip rows
// others hold), so a tick starts once however many workers fire schedules.
extension SQLWorkflowStore {
    /// Ticks one call works through per schedule: a long outage of an every-second schedule is
    /// counted in several calls rather than one long transaction.
    static var ticksPerCall: Int { 10_000 }

    private static var scheduleColumns: String {
        "schedule_id, spec, time_zone, workflow_type, input, task_queue, overlap_policy, catchup_window, jitter, "
            + "note, paused, pause_note, start_at, end_at, fired_count, skipped_count, missed_count, last_fire_at, "
            + "next_fire_at, last_workflow_id, buffered_tick_at, created_at"
    }

    package func createSchedule(_ definition: ScheduleDefinition, now: Date) async throws -> ScheduleRecord {
        let zone = try definition.zone()
        let next = definition.nextTick(after: now, in: zone)
        return try await driver.write { connection, notifications in
            let inserted = try await connection.changes(
                """
                INSERT INTO schedules (schedule_id, spec, time_zone, workflow_type, input, task_queue, overlap_policy,
                                       catchup_window, jitter, note, start_at, end_at, next_fire_at, created_at,
                                       updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (schedule_id) DO NOTHING\(self.dialect.countingChanges)
                """, definition.id, definition.cron.text, definition.timeZone, definition.workflowType,
                definition.input.data, definition.taskQueue, definition.overlap.rawValue,
                definition.catchupWindow.seconds, definition.jitter.seconds, definition.note, definition.startAt,
                definition.endAt, next, now, now)
            guard inserted > 0 else {
                throw KeelError(
                    .scheduleExists, "a schedule with id '\(definition.id)' exists (delete it first to replace it)")
            }
            notifications.topics.insert(.timers)
            return ScheduleRecord(
                definition: definition, paused: false, pauseNote: nil, firedCount: 0, skippedCount: 0, missedCount: 0,
                lastFireAt: nil, nextFireAt: next, lastWorkflowID: nil, bufferedTick: nil, createdAt: now)
        }
    }

    package func schedule(id: String) async throws -> ScheduleRecord? {
        try await driver.read { connection in
            try await connection.row("SELECT \(Self.scheduleColumns) FROM schedules WHERE schedule_id = ?", id)
                .map(Self.schedule(from:))
        }
    }

    package func listSchedules() async throws -> [ScheduleRecord] {
        try await driver.read { connection in
            try await connection.query("SELECT \(Self.scheduleColumns) FROM schedules ORDER BY schedule_id")
                .map(Self.schedule(from:))
        }
    }

    package func setSchedulePaused(id: String, paused: Bool, note: String?, now: Date) async throws -> ScheduleRecord {
        try await driver.write { [self] connection, notifications in
            var record = try await lockSchedule(connection, id: id)
            record.paused = paused
            record.pauseNote = paused ? note : nil
            if !paused {
                // Ticks that passed while it was paused are not fired: it goes on from now.
                record.nextFireAt = record.definition.nextTick(after: now, in: try record.definition.zone())
                notifications.topics.insert(.timers)
            }
            try await save(connection, record, now: now)
            return record
        }
    }

    package func deleteSchedule(id: String) async throws {
        try await driver.write { connection, _ in
            let deleted = try await connection.changes(
                "DELETE FROM schedules WHERE schedule_id = ?\(self.dialect.countingChanges)", id)
            guard deleted > 0 else { throw Self.scheduleNotFound(id) }
        }
    }

    package func triggerSchedule(id: String, now: Date) async throws -> ScheduleTickOutcome {
        try await driver.write { [self] connection, notifications in
            var record = try await lockSchedule(connection, id: id)
            let outcome = try await fire(
                connection, &record, tick: now, overlap: record.definition.overlap, now: now,
                notifications: &notifications)
            try await save(connection, record, now: now)
            return outcome
        }
    }

    package func backfillSchedule(id: String, from: Date, to: Date, overlap: ScheduleOverlapPolicy, now: Date)
        async throws -> [ScheduleTickOutcome]
    {
        try await driver.write { [self] connection, notifications in
            var record = try await lockSchedule(connection, id: id)
            let zone = try record.definition.zone()
            var ticks: [Date] = []
            var cursor = record.definition.cron.nextFire(after: from.addingTimeInterval(-0.001), in: zone)
            while let tick = cursor, tick <= to {
                guard ticks.count < Self.ticksPerCall else {
                    throw KeelError(
                        .invalidArgument,
                        "the backfill from \(from.formatted(.iso8601)) to \(to.formatted(.iso8601)) holds more than "
                            + "\(Self.ticksPerCall) ticks: backfill a shorter span at a time")
                }
                ticks.append(tick)
                cursor = record.definition.cron.nextFire(after: tick, in: zone)
            }
            var outcomes: [ScheduleTickOutcome] = []
            for tick in ticks {
                outcomes.append(
                    try await fire(
                        connection, &record, tick: tick, overlap: overlap, now: now, notifications: &notifications))
            }
            try await save(connection, record, now: now)
            return outcomes
        }
    }

    package func fireDueSchedules(now: Date, limit: Int) async throws -> Int {
        // Called on every pass of every worker's timer loop: a read finds nothing due in one round
        // trip, without a write transaction (and its commit) for nothing.
        let anyDue = try await driver.read { [self] connection in
            try await connection.row(
                """
                SELECT EXISTS (SELECT 1 FROM schedules WHERE paused = \(dialect.false)
                                   AND (next_fire_at <= ? OR buffered_tick_at IS NOT NULL))
                """, now)?.get(0, as: Bool.self) ?? false
        }
        guard anyDue else { return 0 }
        return try await driver.write { [self] connection, notifications in
            let due = try await connection.query(
                """
                SELECT \(Self.scheduleColumns) FROM schedules
                WHERE paused = \(dialect.false) AND (next_fire_at <= ? OR buffered_tick_at IS NOT NULL)
                ORDER BY schedule_id LIMIT ?\(dialect.skipLocked)
                """, now, limit)
            var advanced = 0
            for row in due {
                var record = try Self.schedule(from: row)
                let before = record
                try await advance(connection, &record, now: now, notifications: &notifications)
                if record != before {
                    try await save(connection, record, now: now)
                    advanced += 1
                }
            }
            return advanced
        }
    }

    /// Fires the schedule's buffered tick if its run may start now, then every tick due by `now`:
    /// those older than the catch-up window are counted as missed.
    private func advance(
        _ connection: any SQLConnection, _ record: inout ScheduleRecord, now: Date,
        notifications: inout StoreNotifications
    ) async throws {
        let definition = record.definition
        if let buffered = record.bufferedTick, try await openRun(connection, of: record) == nil {
            record.bufferedTick = nil
            _ = try await fire(
                connection, &record, tick: buffered, overlap: .allowAll, now: now, notifications: &notifications)
        }
        let zone = try definition.zone()
        let oldestFired = now.addingTimeInterval(-definition.catchupWindow.seconds)
        var worked = 0
        while let tick = record.nextFireAt, tick <= now, worked < Self.ticksPerCall {
            if tick < oldestFired {
                record.missedCount += 1
            } else {
                _ = try await fire(
                    connection, &record, tick: tick, overlap: definition.overlap, now: now,
                    notifications: &notifications)
            }
            record.nextFireAt = definition.nextTick(after: tick, in: zone)
            worked += 1
        }
    }

    /// Starts the run of one tick, as `overlap` says given the run the schedule started last.
    private func fire(
        _ connection: any SQLConnection, _ record: inout ScheduleRecord, tick: Date, overlap: ScheduleOverlapPolicy,
        now: Date, notifications: inout StoreNotifications
    ) async throws -> ScheduleTickOutcome {
        let definition = record.definition
        if let open = try await openRun(connection, of: record) {
            let reason =
                "schedule '\(definition.id)' fired its tick of \(tick.formatted(.iso8601)) (overlap policy "
                + "\(overlap.rawValue))"
            switch overlap {
            case .skip:
                record.skippedCount += 1
                return .skipped(tick: tick)
            case .bufferOne:
                guard record.bufferedTick == nil else {
                    record.skippedCount += 1
                    return .skipped(tick: tick)
                }
                record.bufferedTick = tick
                return .buffered(tick: tick)
            case .allowAll:
                break
            case .cancelPrevious:
                let kind = HistoryEvent.Kind.cancelRequested(reason: reason)
                try await addToInbox(
                    connection, runID: open, kind: kind, body: try EventCodec.encode(kind), now: now,
                    notifications: &notifications)
            case .terminatePrevious:
                try await terminateRun(connection, runID: open, reason: reason, now: now, notifications: &notifications)
            }
        }
        var request = StartWorkflowRequest(
            workflowID: ScheduleDefinition.workflowID(scheduleID: definition.id, tick: tick),
            workflowType: definition.workflowType, input: definition.input, now: now, taskQueue: definition.taskQueue,
            idReusePolicy: .rejectDuplicate)
        request.notBefore = tick.addingTimeInterval(definition.jitterDelay(for: tick))
        request.searchAttributes = ["scheduleID": .string(definition.id), "scheduledTime": .date(tick)]
        request.scheduleID = definition.id
        let started: StartWorkflowResult
        do {
            started = try await insertRun(
                connection, request, started: try EventCodec.encode(startedKind(of: request)), needsTask: true,
                notifications: &notifications)
        } catch let error as KeelError where error.code == .workflowIDReused {
            record.skippedCount += 1  // this tick's run already ran (a backfill over fired ticks)
            return .skipped(tick: tick)
        }
        guard started.created else {
            record.skippedCount += 1
            return .skipped(tick: tick)
        }
        notifications.topics.insert(.workflowTasks)
        record.firedCount += 1
        record.lastFireAt = tick
        record.lastWorkflowID = request.workflowID
        return .started(workflowID: request.workflowID, runID: started.runID)
    }

    /// The open run the schedule started last, if any (locked, on PostgreSQL).
    private func openRun(_ connection: any SQLConnection, of record: ScheduleRecord) async throws -> String? {
        guard let workflowID = record.lastWorkflowID else { return nil }
        return try await connection.row(
            """
            SELECT run_id FROM workflow_runs
            WHERE workflow_id = ? AND status IN \(RunStatus.openSQLList)\(dialect.lockRows)
            """, workflowID)?.get(0)
    }

    private func lockSchedule(_ connection: any SQLConnection, id: String) async throws -> ScheduleRecord {
        guard
            let row = try await connection.row(
                "SELECT \(Self.scheduleColumns) FROM schedules WHERE schedule_id = ?\(dialect.lockRows)", id)
        else { throw Self.scheduleNotFound(id) }
        return try Self.schedule(from: row)
    }

    private func save(_ connection: any SQLConnection, _ record: ScheduleRecord, now: Date) async throws {
        try await connection.execute(
            """
            UPDATE schedules SET paused = ?, pause_note = ?, fired_count = ?, skipped_count = ?, missed_count = ?,
                last_fire_at = ?, next_fire_at = ?, last_workflow_id = ?, buffered_tick_at = ?, updated_at = ?
            WHERE schedule_id = ?
            """, record.paused, record.pauseNote, record.firedCount, record.skippedCount, record.missedCount,
            record.lastFireAt, record.nextFireAt, record.lastWorkflowID, record.bufferedTick, now,
            record.definition.id)
    }

    static func scheduleNotFound(_ id: String) -> KeelError {
        KeelError(.scheduleNotFound, "no schedule with id '\(id)' (see `worker schedule list`)")
    }

    static func schedule(from row: SQLRow) throws -> ScheduleRecord {
        let spec: String = try row.get(1)
        let cron: CronExpression
        do { cron = try CronExpression(spec) } catch {
            throw KeelError(
                .storage, "the stored schedule '\(try row.get(0, as: String.self))' has an invalid spec: \(error)")
        }
        let definition = ScheduleDefinition(
            id: try row.get(0), cron: cron, timeZone: try row.get(2), workflowType: try row.get(3),
            input: Payload(data: try row.get(4)), taskQueue: try row.get(5),
            overlap: ScheduleOverlapPolicy(rawValue: try row.get(6)) ?? .skip,
            catchupWindow: .saturating(seconds: try row.get(7)), jitter: .saturating(seconds: try row.get(8)),
            note: try row.get(9), startAt: try row.get(12), endAt: try row.get(13))
        return ScheduleRecord(
            definition: definition, paused: try row.get(10), pauseNote: try row.get(11), firedCount: try row.get(14),
            skippedCount: try row.get(15), missedCount: try row.get(16), lastFireAt: try row.get(17),
            nextFireAt: try row.get(18), lastWorkflowID: try row.get(19), bufferedTick: try row.get(20),
            createdAt: try row.get(21))
    }
}
