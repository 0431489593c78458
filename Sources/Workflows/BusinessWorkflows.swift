import Activities
import WorkflowRuntime

extension WorkflowRegistry {
    /// Registers the business workflows and the activities of their own; they also call the
    /// provider activities (``WorkflowRegistry/registerOutboundActivities(gateway:)``) and file
    /// evidence packs in the document store through `gateway`.
    /// - Throws: ``KeelError`` `.invalidArgument` for a database that is not Keel's SQL store.
    public mutating func registerBusinessWorkflows(database: WorkflowDatabase, gateway: OutboundGateway) throws {
        register(PartnerApproval.self)
        register(TermSheetSignature.self)
        register(OutreachCadence.self)
        register(DueDiligenceRoom.self)
        register(DDWorkstream.self)
        registerDueDiligenceActivities()
        registerPartnerActivities()
        register(AttachEvidencePack(database: database, gateway: gateway))
        register(SuppressRecipient(ledger: gateway.ledger))
        register(LoadCadence(library: try CadenceLibrary(database: database)))
    }
}
