import Foundation
import Testing
import WorkflowRuntime

/// One table-driven case of the replay state machine, from `ReplayCases/*.json`: a history, a
/// script of what the code and the world do, and what the machine must hand back. No database,
/// no workflow code: only the machine.
struct ReplayCase: Decodable, CustomTestStringConvertible {
    struct Action: Decodable {
        /// `activity`, `sleep`, `signal`, `decision`, `compensationRetry`, `signalExternal`,
        /// `cancelExternal` (operations of the code), `cancelWait` (the code cancels the task in
        /// wait `wait`) or `event` (something that happened to the run).
        var `do`: String
        var name: String?
        /// The workflow id a `signalExternal` or `cancelExternal` goes to.
        var target: String?
        /// For `activity`: its ``ActivityCancellationType`` (default `tryCancel`).
        var cancellation: ActivityCancellationType?
        /// For `cancelWait`: the wait whose task is cancelled.
        var wait: Int?
        var input: Payload?
        var shielded: Bool?
        var seconds: Double?
        var timeout: Double?
        var seq: Int?
        var kind: HistoryEvent.Kind?
        var at: Date?
        var new: Bool?
        /// An operation's outcome: `wait N`, `ready VALUE` or `non-deterministic: MESSAGE`.
        var expect: String?
        /// The waits an event wakes, in order: `N: VALUE`.
        var wakes: [String]?
    }

    var name: String
    var history: [HistoryEvent]
    var script: [Action]
    /// The events the machine records, compared whole (kind, sequence, names, payloads).
    var newEvents: [HistoryEvent.Kind]
    /// The non-determinism found once the script ran, if one must be.
    var unreplayed: String?

    var testDescription: String { name }

    static func all() throws -> [ReplayCase] {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        let folder = try #require(Bundle.module.url(forResource: "ReplayCases", withExtension: nil))
        return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
            .flatMap { try decoder.decode([ReplayCase].self, from: Data(contentsOf: $0)) }
    }
}

@Suite("Replay state machine: table-driven cases over JSON histories, no database")
struct ReplayStateMachineTests {
    @Test("each case", arguments: try ReplayCase.all())
    func replay(_ replayCase: ReplayCase) throws {
        var machine = try ReplayStateMachine(history: replayCase.history, runID: "run-1")
        for (index, action) in replayCase.script.enumerated() {
            let context = "step \(index + 1) (\(action.do))"
            if action.do == "cancelWait" {
                let wakes = machine.cancelWait(try #require(action.wait, "\(context): no wait"))
                #expect(wakes.map(Self.describe) == action.wakes ?? [], "\(context)")
            } else if action.do == "event" {
                let kind = try #require(action.kind, "\(context): no kind")
                let wakes = machine.apply(kind, at: action.at ?? Date(timeIntervalSince1970: 0), isNew: action.new ?? true)
                #expect(wakes.map(Self.describe) == action.wakes ?? [], "\(context)")
            } else {
                let step = try Self.perform(action, on: &machine)
                #expect(Self.describe(step) == action.expect, "\(context)")
            }
        }
        #expect(machine.takeNewEvents(closing: nil).map(\.kind) == replayCase.newEvents)
        #expect(machine.unreplayedCommand().map { Self.stripPrefix($0) } == replayCase.unreplayed)
    }

    @Test("the machine refuses a history that does not begin with workflowStarted")
    func refusesHeadlessHistory() {
        #expect(throws: WorkflowTaskFailure.self) {
            try ReplayStateMachine(history: [HistoryEvent(id: 1, timestamp: Date(), kind: .timerFired(seq: 1))], runID: "r")
        }
    }

    private static func perform(_ action: ReplayCase.Action, on machine: inout ReplayStateMachine) throws -> ReplayStateMachine.Step {
        switch action.do {
        case "activity":
            return machine.scheduleActivity(name: try #require(action.name), input: action.input ?? .emptyObject,
                                            options: ActivityOptions(cancellationType: action.cancellation ?? .tryCancel),
                                            defaultKey: { "wf-1/run-1/\($0)" },
                                            shielded: action.shielded ?? false)
        case "sleep": return machine.startTimer(seconds: try #require(action.seconds))
        case "signal": return machine.waitForSignal(named: [try #require(action.name)], timeoutSeconds: action.timeout)
        case "decision": return machine.awaitDecision(ofApprovalAt: try #require(action.seq))
        case "compensationRetry": return machine.awaitCompensationRetry()
        case "signalExternal":
            let target = try #require(action.target)
            let name = try #require(action.name)
            return machine.sendExternalRequest {
                .externalSignalRequested(seq: $0, workflowID: target, signal: name, payload: action.input ?? .emptyObject)
            }
        case "cancelExternal":
            let target = try #require(action.target)
            return machine.sendExternalRequest { .externalCancelRequested(seq: $0, workflowID: target, reason: action.name) }
        default: throw CaseError(message: "unknown action '\(action.do)'")
        }
    }

    private struct CaseError: Error {
        var message: String
    }

    private static func describe(_ step: ReplayStateMachine.Step) -> String {
        switch step {
        case .ready(let value): "ready \(describe(value))"
        case .wait(let id): "wait \(id)"
        case .nonDeterministic(let message): "non-deterministic: \(message)"
        }
    }

    private static func describe(_ wake: ReplayStateMachine.Wake) -> String {
        "\(wake.wait): \(describe(wake.value))"
    }

    private static func describe(_ value: ReplayStateMachine.WakeValue) -> String {
        switch value {
        case .activityCompleted(let result): "activityCompleted \(result)"
        case .activityFailed(let failure): "activityFailed \(failure.activityName): \(failure.cause.message) after \(failure.attempts)"
        case .timerFired: "timerFired"
        case .signal(let signal): "signal \(signal.map(\.payload.description) ?? "nil")"
        case .approvalDecided(let decision): "approvalDecided \(decision.outcome.rawValue)" + (decision.decidedBy.map { " by \($0)" } ?? "")
        case .externalRequestDelivered(let runID): "delivered to \(runID)"
        case .externalRequestFailed(let failure): "failed \(failure.type)"
        case .childStarted(let runID): "child started as \(runID)"
        case .childStartFailed(let failure): "child start failed \(failure.type)"
        case .childClosed(let closure): "child \(closure.status.rawValue)"
        case .compensationRetry: "compensationRetry"
        case .cancelled(let reason): "cancelled \(reason ?? "nil")"
        case .taskCancelled: "taskCancelled"
        }
    }

    /// A non-determinism message without its `non-deterministic workflow 'T' (id W): ` prefix.
    private static func stripPrefix(_ message: String) -> String {
        message.range(of: "): ").map { String(message[$0.upperBound...]) } ?? message
    }
}
