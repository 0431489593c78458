import Foundation
import Testing
import WorkflowRuntime

// The rest of the store conformance suite: run listing and paging, cancellation requests,
// blocking and unblocking, heartbeats, and concurrent claimers. Every test runs on every backend.

private let t0 = Date(timeIntervalSince1970: 1_800_000_000)

private func startRequest(_ id: String, type: String = "conformance", at time: Date = t0) -> StartWorkflowRequest {
    StartWorkflowRequest(workflowID: id, workflowType: type, input: Payload(json: "{}"), now: time)
}

private func step(_ seq: Int) -> HistoryEvent.Kind {
    .activityScheduled(seq: seq, activity: "step", input: Payload(json: "\(seq)"), idempotencyKey: "key-\(seq)",
                       options: ActivityOptions())
}

@Suite("Store conformance: listing, cancellation, blocking, heartbeats, concurrent claims")
struct StoreOperationConformanceTests {
    @Test("listRuns filters by status and by type, newest first, and pages through ties without gaps or repeats",
          arguments: StoreBackend.allCases)
    func listRunsFiltersAndPages(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let start = { (id: String, type: String, time: Date) in
                try await store.startWorkflow(startRequest(id, type: type, at: time)).runID
            }
            /// Every page of `query`, `limit` runs at a time, each page starting after the last run of the previous one.
            let pages = { (query: RunQuery) in
                var query = query
                var result: [[WorkflowRun]] = []
                while true {
                    let page = try await store.listRuns(query)
                    guard let last = page.last else { return result }
                    result.append(page)
                    query.after = (last.createdAt, last.runID)
                }
            }
            var runIDs: [String: String] = [:]
            for index in 1...5 { runIDs["a\(index)"] = try await start("a\(index)", "alpha", t0.addingTimeInterval(Double(index))) }
            // Three runs created in the same instant: paging must order them by run id.
            for index in 1...3 { runIDs["tie\(index)"] = try await start("tie\(index)", "beta", t0.addingTimeInterval(10)) }
            _ = try await store.terminate(workflowID: "a2", reason: "test", now: t0.addingTimeInterval(20))

            let all = try await store.listRuns(RunQuery())
            #expect(all.count == 8)
            for (newer, older) in zip(all, all.dropFirst()) {
                #expect(newer.createdAt > older.createdAt || (newer.createdAt == older.createdAt && newer.runID > older.runID))
            }
            #expect(all.suffix(5).map(\.workflowID) == ["a5", "a4", "a3", "a2", "a1"])

            #expect(try await store.listRuns(RunQuery(status: .terminated)).map(\.workflowID) == ["a2"])
            #expect(try await store.listRuns(RunQuery(workflowType: "beta")).map(\.workflowID).sorted() == ["tie1", "tie2", "tie3"])
            #expect(try await store.listRuns(RunQuery(status: .running, workflowType: "alpha")).map(\.workflowID)
                    == ["a5", "a4", "a3", "a1"])
            #expect(try await store.listRuns(RunQuery(status: .completed)).isEmpty)
            #expect(try await store.listRuns(RunQuery(limit: 3)).map(\.runID) == all.prefix(3).map(\.runID))

            let pagesOfAll = try await pages(RunQuery(limit: 3))
            #expect(pagesOfAll.map(\.count) == [3, 3, 2])
            #expect(pagesOfAll.flatMap { $0.map(\.runID) } == all.map(\.runID))
            #expect(Set(all.map(\.runID)) == Set(runIDs.values))
            #expect(try await pages(RunQuery(workflowType: "alpha", limit: 2)).flatMap { $0.map(\.workflowID) }
                    == ["a5", "a4", "a3", "a2", "a1"])
            #expect(try await pages(RunQuery(status: .running, limit: 1)).flatMap { $0.map(\.workflowID) }.count == 7)
        }
    }

    @Test("a cancellation request waits in the open run's inbox; a closed or unknown workflow is refused",
          arguments: StoreBackend.allCases)
    func cancellationRequests(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let runID = try await store.startWorkflow(startRequest("w")).runID
            #expect(try await store.requestCancellation(workflowID: "w", reason: "customer left", now: t0) == runID)
            let task = try #require(try await store.claimWorkflowTasks(owner: "a", limit: 10, lease: .seconds(10), now: t0,
                                                                       cachedTaskVersion: { _ in nil }).first)
            #expect(task.runID == runID && task.inbox.map(\.kind) == [.cancelRequested(reason: "customer left")])
            // The request does not close the run: its code decides how to stop.
            #expect(try await store.run(runID: runID)?.status == .running)

            _ = try await store.terminate(workflowID: "w", reason: "test", now: t0)
            let closed = await #expect(throws: KeelError.self) {
                try await store.requestCancellation(workflowID: "w", reason: nil, now: t0)
            }
            #expect(closed?.code == .workflowClosed)
            let unknown = await #expect(throws: KeelError.self) {
                try await store.requestCancellation(workflowID: "nobody", reason: nil, now: t0)
            }
            #expect(unknown?.code == .workflowNotFound)
            #expect(try await store.history(runID: runID).map(\.kind.name) == ["workflowStarted", "workflowTerminated"])
        }
    }

    @Test("a blocked run keeps its inbox and is not claimed until unblocked; only the lease holder may block",
          arguments: StoreBackend.allCases)
    func blockingAndUnblocking(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let claim = { (time: Date) in
                try await store.claimWorkflowTasks(owner: "a", limit: 10, lease: .seconds(10), now: time, cachedTaskVersion: { _ in nil })
            }
            let blockedID = try await store.startWorkflow(startRequest("blocked")).runID
            let otherID = try await store.startWorkflow(startRequest("other")).runID
            let tasks = try await claim(t0)
            let blockedTask = try #require(tasks.first { $0.runID == blockedID })
            let otherTask = try #require(tasks.first { $0.runID == otherID })

            try await store.blockRun(runID: blockedID, leaseToken: blockedTask.leaseToken, reason: "non-determinism at 1", now: t0)
            // A token that is not the run's lease blocks nothing.
            try await store.blockRun(runID: otherID, leaseToken: otherTask.leaseToken &+ 1, reason: "stale", now: t0)
            let blocked = try #require(try await store.run(runID: blockedID))
            #expect(blocked.status == .blocked && blocked.status.isOpen && blocked.statusReason == "non-determinism at 1")
            #expect(try await store.run(runID: otherID)?.status == .running)

            // Open: it still takes signals, but no worker gets it.
            #expect(try await store.signal(SignalRequest(workflowID: "blocked", name: "s", now: t0)) == .delivered(runID: blockedID))
            #expect(try await claim(t0.addingTimeInterval(60)).map(\.runID) == [otherID])

            #expect(try await store.unblockRuns(now: t0.addingTimeInterval(60)) == 1)
            #expect(try await store.unblockRuns(now: t0.addingTimeInterval(60)) == 0)
            let unblocked = try #require(try await store.run(runID: blockedID))
            #expect(unblocked.status == .running && unblocked.statusReason == nil)
            let retry = try #require(try await claim(t0.addingTimeInterval(120)).first { $0.runID == blockedID })
            #expect(retry.history?.map(\.kind.name) == ["workflowStarted"])
            #expect(retry.inbox.map(\.kind.name) == ["signalReceived"])
        }
    }

    @Test("a heartbeat extends the attempt's lease and keeps its details for the next attempt; a stale one is refused",
          arguments: StoreBackend.allCases)
    func heartbeats(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let runID = try await store.startWorkflow(startRequest("w")).runID
            let task = try #require(try await store.claimWorkflowTasks(owner: "a", limit: 1, lease: .seconds(10), now: t0,
                                                                       cachedTaskVersion: { _ in nil }).first)
            let commit = WorkflowTaskCompletion(runID: runID, workflowID: "w", leaseToken: task.leaseToken,
                                                expectedTaskVersion: task.taskVersion, consumedInboxThrough: nil,
                                                events: [(step(1), t0)], eagerLeases: [:], now: t0)
            #expect(try await store.completeWorkflowTask(commit) == .committed(taskVersion: 1))
            let claim = { (time: Date) in
                try await store.claimActivityTasks(owner: "a", limit: 10, defaultLease: .seconds(30), now: time)
            }
            let first = try #require(try await claim(t0).first)
            #expect(first.heartbeatDetails == nil)

            let progress = Payload(json: "{\"page\":3}")
            #expect(try await store.heartbeat(runID: runID, seq: 1, leaseToken: first.leaseToken, details: progress,
                                              leaseUntil: t0.addingTimeInterval(100)) == .leaseHeld)
            // A heartbeat without details keeps the last ones.
            #expect(try await store.heartbeat(runID: runID, seq: 1, leaseToken: first.leaseToken, details: nil,
                                              leaseUntil: t0.addingTimeInterval(100)) == .leaseHeld)
            // Without the heartbeat the lease would have ended at 30 s.
            #expect(try await claim(t0.addingTimeInterval(50)).isEmpty)

            let second = try #require(try await claim(t0.addingTimeInterval(101)).first)
            #expect(second.attempt == 2 && second.idempotencyKey == "key-1" && second.heartbeatDetails == progress)
            #expect(try await store.heartbeat(runID: runID, seq: 1, leaseToken: first.leaseToken, details: nil,
                                              leaseUntil: t0.addingTimeInterval(200)) == .leaseLost)
            #expect(try await store.heartbeat(runID: runID, seq: 1, leaseToken: second.leaseToken, details: nil,
                                              leaseUntil: t0.addingTimeInterval(200)) == .leaseHeld)
        }
    }

    @Test("a claimer whose lease expired and who reports back is refused, and its claim stops counting as a lost one",
          arguments: StoreBackend.allCases)
    func slowClaimerDoesNotCountAsLost(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            _ = try await store.startWorkflow(startRequest("slow"))
            let claim = { (owner: String, time: Date) in
                try #require(try await store.claimWorkflowTasks(owner: owner, limit: 1, lease: .seconds(1), now: time,
                                                                cachedTaskVersion: { _ in nil }).first)
            }
            let slow = try await claim("slow", t0)
            #expect(slow.claims == 1)
            let second = try await claim("second", t0.addingTimeInterval(2))
            #expect(second.claims == 2, "the expired lease was taken over")
            let late = WorkflowTaskCompletion(runID: slow.runID, workflowID: "slow", leaseToken: slow.leaseToken,
                                              expectedTaskVersion: slow.taskVersion, consumedInboxThrough: nil,
                                              events: [(step(1), t0)], eagerLeases: [:], now: t0.addingTimeInterval(3))
            guard case .rejected = try await store.completeWorkflowTask(late) else {
                Issue.record("a commit under a lost lease must be refused")
                return
            }
            #expect(try await store.history(runID: slow.runID).count == 1, "nothing of the late commit was written")
            let third = try await claim("third", t0.addingTimeInterval(5))
            #expect(third.claims == 2, "the slow claimer reported back: only the second claim is unaccounted for")
        }
    }

    @Test("a task given back after an unreachable database is claimable at once and its claim stops counting",
          arguments: StoreBackend.allCases)
    func releasedTaskDoesNotCountAsLost(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            _ = try await store.startWorkflow(startRequest("outage"))
            let claim = { (owner: String, time: Date) in
                try await store.claimWorkflowTasks(owner: owner, limit: 1, lease: .seconds(10), now: time,
                                                   cachedTaskVersion: { _ in nil }).first
            }
            let first = try #require(try await claim("first", t0))
            #expect(try await claim("other", t0.addingTimeInterval(1)) == nil, "the lease holds")
            try await store.releaseWorkflowTask(runID: first.runID, leaseToken: first.leaseToken,
                                                now: t0.addingTimeInterval(1))
            let second = try #require(try await claim("second", t0.addingTimeInterval(1)),
                                      "released before its lease ended")
            #expect(second.claims == 1, "the released claim no longer counts")

            // Released late, after another worker took the run over: only the count goes down.
            let third = try #require(try await claim("third", t0.addingTimeInterval(20)))
            #expect(third.claims == 2)
            try await store.releaseWorkflowTask(runID: second.runID, leaseToken: second.leaseToken,
                                                now: t0.addingTimeInterval(21))
            #expect(try await claim("other", t0.addingTimeInterval(21)) == nil, "the third claimer keeps its lease")
            let fourth = try #require(try await claim("fourth", t0.addingTimeInterval(40)))
            #expect(fourth.claims == 2, "of three claims, only the third is unaccounted for")
        }
    }

    @Test("two claimers at once get disjoint workflow tasks and disjoint activity attempts, together all of them",
          arguments: StoreBackend.allCases)
    func concurrentClaimersAreDisjoint(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let count = 24
            var runIDs: Set<String> = []
            for index in 0..<count { runIDs.insert(try await store.startWorkflow(startRequest("w\(index)")).runID) }

            let claimTasks: @Sendable (String) async throws -> [WorkflowTask] = { owner in
                try await store.claimWorkflowTasks(owner: owner, limit: count * 2 / 3, lease: .seconds(10), now: t0,
                                                   cachedTaskVersion: { _ in nil })
            }
            async let claimedByA = claimTasks("a")
            async let claimedByB = claimTasks("b")
            let (tasksA, tasksB) = try await (claimedByA, claimedByB)
            #expect(Set(tasksA.map(\.runID)).isDisjoint(with: tasksB.map(\.runID)))
            #expect(Set(tasksA.map(\.runID) + tasksB.map(\.runID)) == runIDs)
            #expect(tasksA.count + tasksB.count == count)

            for task in tasksA + tasksB {
                let commit = WorkflowTaskCompletion(runID: task.runID, workflowID: task.workflowID, leaseToken: task.leaseToken,
                                                    expectedTaskVersion: task.taskVersion, consumedInboxThrough: nil,
                                                    events: [(step(1), t0)], eagerLeases: [:], now: t0)
                #expect(try await store.completeWorkflowTask(commit) == .committed(taskVersion: 1))
            }

            let claimAttempts: @Sendable (String) async throws -> [ActivityTask] = { owner in
                try await store.claimActivityTasks(owner: owner, limit: count * 2 / 3, defaultLease: .seconds(30), now: t0)
            }
            async let attemptsOfA = claimAttempts("a")
            async let attemptsOfB = claimAttempts("b")
            let (attemptsA, attemptsB) = try await (attemptsOfA, attemptsOfB)
            #expect(Set(attemptsA.map(\.runID)).isDisjoint(with: attemptsB.map(\.runID)))
            #expect(Set(attemptsA.map(\.runID) + attemptsB.map(\.runID)) == runIDs)
            #expect((attemptsA + attemptsB).allSatisfy { $0.attempt == 1 })
        }
    }
}
