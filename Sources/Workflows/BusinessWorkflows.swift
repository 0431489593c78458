import Activities
import WorkflowRuntime

extension WorkflowRegistry {
    /// Registers the business workflows and the activities of their own (the provider activities
    /// they also call come with ``WorkflowRegistry/registerOutboundActivities(gateway:)``).
    public mutating func registerBusinessWorkflows() {
        register(PartnerApproval.self)
        registerPartnerActivities()
    }
}
