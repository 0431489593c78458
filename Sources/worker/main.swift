import Activities
import KeelCLI
import WorkflowRuntime
import Workflows

/// The Keel worker: the daemon and admin CLI with the business and diagnostic workflows.
await KeelCLI.main(
    name: "worker",
    extraCommands: [
        DemoCommand.self, BenchCommand.self, OutboxCommand.self, SuppressCommand.self, UnsuppressCommand.self,
        SuppressionsCommand.self, LimitsCommand.self, EmergencyStopCommand.self, ConfigCommand.self,
        EvidenceCommand.self, CadenceCommand.self, ChaosCommand.self,
    ]
) { database in
    try WorkerRegistry.make(for: database)
}
