import WorkflowRuntime

/// `diagnostics.parent`: starts `children` `diagnostics.sequence` children at once (all in one
/// commit), waits for every one and returns their outputs in order. `failChild` (1-based) gives
/// that child an invalid step count, so it fails (`InvalidValue`) and the parent fails with a
/// ``ChildWorkflowFailure`` carrying the child's error. Children are terminated if the parent
/// closes first, unless `parentClosePolicy` says otherwise.
public struct DiagnosticParent: Workflow {
    public static let name = "diagnostics.parent"

    public struct Input: Codable, Sendable {
        /// How many children (0 to 1,000).
        public var children: Int
        /// Steps of each child.
        public var steps: Int?
        /// Milliseconds each child's step works.
        public var stepDelayMilliseconds: Int?
        /// Lease of a child's step attempt (see ``DiagnosticSequence/Input/stepTimeoutSeconds``).
        public var stepTimeoutSeconds: Double?
        /// The 1-based child that fails.
        public var failChild: Int?
        public var parentClosePolicy: ParentClosePolicy?

        public init(
            children: Int, steps: Int? = nil, stepDelayMilliseconds: Int? = nil, stepTimeoutSeconds: Double? = nil,
            failChild: Int? = nil, parentClosePolicy: ParentClosePolicy? = nil
        ) {
            self.children = children
            self.steps = steps
            self.stepDelayMilliseconds = stepDelayMilliseconds
            self.stepTimeoutSeconds = stepTimeoutSeconds
            self.failChild = failChild
            self.parentClosePolicy = parentClosePolicy
        }
    }

    public init() {}

    /// Most children one run starts.
    static let maximumChildren = 1_000

    public func run(context: WorkflowContext, input: Input) async throws -> [DiagnosticSequence.Output] {
        guard (0...Self.maximumChildren).contains(input.children) else {
            throw InvalidValueError(
                name: "children", value: "\(input.children)", requirement: "from 0 to \(Self.maximumChildren)")
        }
        let steps = input.steps ?? 1
        try DiagnosticInput.checkSteps(steps)
        let options = ChildWorkflowOptions(parentClosePolicy: input.parentClosePolicy ?? .terminate)
        try await context.setStage("waiting-for-children")  // `worker list --stage waiting-for-children`
        return try await context.parallel(Array((0..<input.children).map { $0 + 1 })) { number in
            let childInput = DiagnosticSequence.Input(
                steps: number == input.failChild ? -1 : steps, stepDelayMilliseconds: input.stepDelayMilliseconds,
                stepTimeoutSeconds: input.stepTimeoutSeconds)
            return try await context.executeChild(DiagnosticSequence.self, input: childInput, options: options)
        }
    }
}
