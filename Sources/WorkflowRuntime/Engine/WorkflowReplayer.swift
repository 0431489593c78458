/// Checks stored histories against the current workflow code, e.g. before a deploy
/// (`worker replay`) and in tests with golden histories.
///
/// ```swift
/// try WorkflowReplayer(registry: registry).replay(history, runID: run.runID)
/// ```
public struct WorkflowReplayer: Sendable {
    public let registry: WorkflowRegistry

    public init(registry: WorkflowRegistry) {
        self.registry = registry
    }

    /// Replays `history` against the registered code.
    /// - Throws: ``KeelError`` `.nonDeterminism` naming the operation the code issued and the recorded
    ///   one; `.unknownWorkflowType` if the type is not registered.
    public func replay(_ history: [HistoryEvent], runID: String = "replay") throws {
        guard case .workflowStarted(let type, _, _, _)? = history.first?.kind else {
            throw KeelError(.invalidArgument, "a history must begin with workflowStarted")
        }
        let definition = try registry.workflow(named: type)
        let execution: WorkflowExecution
        do {
            execution = try WorkflowExecution.replay(history, runID: runID, definition: definition)
        } catch let failure as WorkflowTaskFailure {
            throw KeelError(.nonDeterminism, failure.message)
        }
        defer { execution.evict() }
        if let failure = execution.checkClosingMatchesHistory() {
            throw KeelError(.nonDeterminism, failure.message)
        }
    }
}
