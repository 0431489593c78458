import WorkflowRuntime

/// `diagnostics.counter`: an entity that lives as long as it is fed. Each `add` signal's amount
/// (a JSON integer) is added to the total; every `continueEvery` signals it continues as new,
/// carrying its state, so its history stays short however many signals it takes; `stop` returns
/// the total. Used by tests, `worker demo` and operators' smoke checks of continue-as-new.
public struct DiagnosticCounter: Workflow {
    public static let name = "diagnostics.counter"

    public struct State: Codable, Sendable, Hashable {
        /// The sum of the amounts added so far.
        public var total: Int
        /// How many `add` signals were counted so far, over every run.
        public var signals: Int
        /// Signals one run takes before it continues as new (1 to 10,000; default 100).
        public var continueEvery: Int?

        public init(total: Int = 0, signals: Int = 0, continueEvery: Int? = nil) {
            self.total = total
            self.signals = signals
            self.continueEvery = continueEvery
        }

        private enum Key: String, CodingKey { case total, signals, continueEvery }

        /// Missing fields take their defaults: `{}` is a new counter.
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            self.init(
                total: try c.decodeIfPresent(Int.self, forKey: .total) ?? 0,
                signals: try c.decodeIfPresent(Int.self, forKey: .signals) ?? 0,
                continueEvery: try c.decodeIfPresent(Int.self, forKey: .continueEvery))
        }
    }

    /// The change id of the overflow check (see ``WorkflowContext/version(_:minSupported:maxSupported:)``).
    public static let overflowCheck = "counter-overflow-check"

    public init() {}

    public func run(context: WorkflowContext, input: State) async throws -> State {
        let every = input.continueEvery ?? 100
        guard (1...DiagnosticInput.maximumSteps).contains(every) else {
            throw InvalidValueError(
                name: "continueEvery", value: "\(every)", requirement: "from 1 to \(DiagnosticInput.maximumSteps)")
        }
        // Version 0 (before this check existed) added with wrapping arithmetic; it is no longer
        // supported, so a run recorded by it is blocked rather than replayed differently.
        _ = try await context.version(Self.overflowCheck, minSupported: 1, maxSupported: 1)
        // Listable by where it stands: `worker list --attr counterTotal=N`, refreshed once per run.
        try await context.upsertSearchAttributes(["counterTotal": .int(input.total)])
        var state = input
        for _ in 0..<every {
            let signal = try await context.waitForSignal(anyOf: ["add", "stop"])
            if signal.name == "stop" { return state }
            let amount = try signal.decode(as: Int.self)
            let (total, overflow) = state.total.addingReportingOverflow(amount)
            if overflow {
                throw ApplicationError(
                    "adding \(amount) to the total \(state.total) overflows a 64-bit integer",
                    type: "CounterOverflow", nonRetryable: true)
            }
            state.total = total
            state.signals += 1
        }
        try await context.continueAsNew(input: state)
    }
}
