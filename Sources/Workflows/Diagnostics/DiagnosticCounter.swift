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
    }

    public init() {}

    public func run(context: WorkflowContext, input: State) async throws -> State {
        let every = input.continueEvery ?? 100
        guard (1...DiagnosticInput.maximumSteps).contains(every) else {
            throw InvalidValueError(
                name: "continueEvery", value: "\(every)", requirement: "from 1 to \(DiagnosticInput.maximumSteps)")
        }
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
