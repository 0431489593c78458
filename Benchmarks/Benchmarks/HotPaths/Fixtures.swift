import Activities
import Foundation
import KeelCLI
import Synchronization
import WorkflowRuntime

/// What a benchmark's setup prepares for its measured closure (set once, before the warm-up).
final class Prepared<Value: Sendable>: Sendable {
    private let storage = Mutex<Value?>(nil)

    func set(_ value: Value) {
        storage.withLock { $0 = value }
    }

    /// The prepared value; a benchmark whose setup did not run is a bug in this file.
    var value: Value {
        guard let value = storage.withLock({ $0 }) else { fatalError("the benchmark's setup did not run") }
        return value
    }
}

/// `count` echo activities one after the other: the history replayed.
struct EchoSteps: Workflow {
    static let name = "bench.echo-steps"

    func run(context: WorkflowContext, input count: Int) async throws -> Int {
        for step in 0..<count {
            _ = try await context.execute(Echo.self, "step \(step)")
        }
        return count
    }
}

/// Returns its input: one workflow task, nothing else.
struct Immediate: Workflow {
    static let name = "bench.immediate"

    func run(context: WorkflowContext, input: String) async throws -> String { input }
}

extension WorkflowRegistry {
    static let benchmarks: WorkflowRegistry = {
        var registry = WorkflowRegistry()
        registry.register(EchoSteps.self)
        registry.register(Immediate.self)
        registry.register(Echo())
        return registry
    }()
}

/// A database opened for a benchmark with a worker running on it, until ``close()``.
final class WorkerSession: Sendable {
    let client: WorkflowClient
    private let scope: Task<Void, any Error>
    private let closing: AsyncStream<Void>.Continuation

    private init(client: WorkflowClient, scope: Task<Void, any Error>, closing: AsyncStream<Void>.Continuation) {
        self.client = client
        self.scope = scope
        self.closing = closing
    }

    /// Opens and migrates the database at `url` and starts a worker on it.
    static func open(url: String) async throws -> WorkerSession {
        let location = try StoreLocation(url: url)
        let (ready, announce) = AsyncThrowingStream.makeStream(of: WorkflowClient.self)
        let (closed, closing) = AsyncStream.makeStream(of: Void.self)
        let scope = Task {
            do {
                try await location.withDatabase { database in
                    try await database.migrate()
                    let worker = Worker(database: database, registry: .benchmarks)
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { try await worker.run() }
                        announce.yield(WorkflowClient(database: database, registry: .benchmarks))
                        for await _ in closed {}
                        worker.stop()
                        try await group.waitForAll()
                    }
                }
                announce.finish()
            } catch {
                announce.finish(throwing: error)
                throw error
            }
        }
        for try await client in ready {
            return WorkerSession(client: client, scope: scope, closing: closing)
        }
        throw KeelError(.storage, "the benchmark's database at \(url) closed before its worker started")
    }

    /// Stops the worker and closes the database.
    func close() async {
        closing.finish()
        _ = await scope.result
    }
}

/// A history of ``eventCount`` events, recorded by running ``EchoSteps`` on a SQLite file.
struct ReplayFixture: Sendable {
    static let steps = 499
    static let eventCount = 1_000

    let replayer = WorkflowReplayer(registry: .benchmarks)
    let history: [HistoryEvent]

    static func make() async throws -> ReplayFixture {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keel-replay-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let session = try await WorkerSession.open(url: "sqlite:\(directory.path)/replay.sqlite")
        let handle = try await session.client.start(EchoSteps.self, id: "replayed", input: steps)
        _ = try await session.client.result(of: handle, as: EchoSteps.self, timeout: .seconds(120))
        let history = try await session.client.describe(workflowID: "replayed", includeHistory: true).history ?? []
        await session.close()
        guard history.count == eventCount else {
            throw KeelError(
                .invalidState, "\(steps) echo steps recorded \(history.count) events, not \(eventCount): adjust `steps`"
            )
        }
        return ReplayFixture(history: history)
    }
}

/// Where the round-trip benchmark runs: a new SQLite file, and a new PostgreSQL database when
/// `KEEL_BENCH_POSTGRES_URL` (a role that may create databases) is set.
struct RoundTripBackend: Sendable {
    let label: String
    let makeDatabaseURL: @Sendable () throws -> String

    static func available() -> [RoundTripBackend] {
        var backends = [
            RoundTripBackend(label: "SQLite file") {
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keel-bench-\(UUID())")
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                return "sqlite:\(directory.path)/bench.sqlite"
            }
        ]
        if let url = ProcessInfo.processInfo.environment["KEEL_BENCH_POSTGRES_URL"], !url.isEmpty {
            backends.append(RoundTripBackend(label: "PostgreSQL") { url })
        } else {
            FileHandle.standardError.write(
                Data("KEEL_BENCH_POSTGRES_URL is not set: the PostgreSQL round trip is left out\n".utf8))
        }
        return backends
    }
}

/// A deal as the sales workflows carry it: the payload encoded and decoded.
struct Deal: Codable, Sendable, Hashable {
    struct LineItem: Codable, Sendable, Hashable {
        var sku: String
        var description: String
        var quantity: Int
        var unitPrice: Double
        var discount: Double?
    }

    struct Approver: Codable, Sendable, Hashable {
        var name: String
        var email: String
        var decidedAt: Date?
    }

    var id: String
    var account: String
    var owner: String
    var stage: String
    var amount: Double
    var currency: String
    var closeDate: Date
    var probability: Double
    var tags: [String]
    var lineItems: [LineItem]
    var approvers: [Approver]
    var notes: String

    static let sample = Deal(
        id: "deal-2026-0042", account: "Northwind Traders", owner: "maria.lopez@example.com", stage: "negotiation",
        amount: 184_250.75, currency: "EUR", closeDate: Date(timeIntervalSince1970: 1_798_761_600), probability: 0.65,
        tags: ["enterprise", "renewal", "multi-year", "emea"],
        lineItems: (1...10).map { index in
            LineItem(
                sku: "SKU-\(1000 + index)", description: "Platform seat bundle, tier \(index)", quantity: index * 5,
                unitPrice: 99.5 * Double(index), discount: index.isMultiple(of: 3) ? 0.1 : nil)
        },
        approvers: [
            Approver(
                name: "Ana Silva", email: "ana.silva@example.com", decidedAt: Date(timeIntervalSince1970: 1_796_000_000)
            ),
            Approver(name: "Tom Berg", email: "tom.berg@example.com", decidedAt: nil),
            Approver(name: "Li Wei", email: "li.wei@example.com", decidedAt: nil),
        ],
        notes: String(repeating: "Customer asked for a quarterly billing schedule and a 30-day pilot. ", count: 8))
}
