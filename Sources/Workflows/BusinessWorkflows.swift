import Activities
import WorkflowRuntime

extension WorkflowRegistry {
    /// Registers the business workflows and the activities of their own; they also call the
    /// provider activities (``WorkflowRegistry/registerOutboundActivities(gateway:)``) and file
    /// evidence packs in the document store through `gateway`.
    public mutating func registerBusinessWorkflows(database: WorkflowDatabase, gateway: OutboundGateway) {
        register(PartnerApproval.self)
        register(TermSheetSignature.self)
        registerPartnerActivities()
        register(AttachEvidencePack(database: database, gateway: gateway))
    }
}
