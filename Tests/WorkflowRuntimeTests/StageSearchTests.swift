import Foundation
import Testing
import WorkflowRuntime
import WorkflowTesting

/// A deal that indexes itself: a stage, then typed attributes from its input; on `advance` a new
/// stage and size; with `continueFirst` it continues as new once before it waits.
struct IndexedDeal: Workflow {
    static let name = "test.indexed-deal"

    struct Input: Codable, Sendable {
        var regions: [String]
        var size: Int
        var score: Double
        var hot: Bool
        var due: Date
        var continueFirst = false
    }

    func run(context: WorkflowContext, input: Input) async throws -> String {
        try await context.setStage("qualifying")
        try await context.upsertSearchAttributes([
            "region": .keywords(input.regions), "size": .int(input.size), "score": .double(input.score),
            "hot": .bool(input.hot), "due": .date(input.due), "owner": .string("ada"),
        ])
        if input.continueFirst {
            var next = input
            next.continueFirst = false
            try await context.continueAsNew(input: next)
        }
        _ = try await context.waitForSignal("advance", as: Int.self)
        try await context.setStage("negotiating")
        try await context.upsertSearchAttributes(["size": .int(input.size * 2), "owner": .keywords([])])
        _ = try await context.waitForSignal("close", as: Empty.self)
        return "closed"
    }
}

/// Sets a search attribute from its input, which may be NaN.
struct BadAttribute: Workflow {
    static let name = "test.bad-attribute"

    func run(context: WorkflowContext, input: String) async throws -> String {
        try await context.upsertSearchAttributes(["score": .double(input == "nan" ? .nan : 1)])
        return "set"
    }
}

@Suite("Stage and search attributes: recorded, indexed, listed with keyset paging")
struct StageSearchTests {
    static func registry() -> WorkflowRegistry {
        var registry = testRegistry()
        registry.register(IndexedDeal.self)
        registry.register(BadAttribute.self)
        return registry
    }

    static let due = Date(timeIntervalSince1970: 1_900_000_000)

    @Test("filters by stage and by each attribute type, combined, and pages through the matches",
          arguments: StoreBackend.allCases)
    func filtersAndPaging(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            for index in 0..<7 {
                _ = try await env.client.start(IndexedDeal.self, id: "deal-\(index)", input: .init(
                    regions: index % 2 == 0 ? ["apac", "emea"] : ["amer"], size: 100 * index, score: Double(index) / 2,
                    hot: index < 3, due: Self.due.addingTimeInterval(Double(index % 2) * 86_400)))
                try await env.runUntilIdle()
            }
            try await env.client.signal(workflowID: "deal-4", name: "advance", value: 1)
            try await env.runUntilIdle()

            func ids(_ query: RunQuery) async throws -> [String] {
                try await env.client.list(query).map(\.workflowID)
            }
            #expect(try await ids(RunQuery(stage: "negotiating")) == ["deal-4"])
            #expect(try await ids(RunQuery(stage: "qualifying")) == ["deal-6", "deal-5", "deal-3", "deal-2", "deal-1", "deal-0"])
            #expect(try await ids(RunQuery(searchAttributes: ["region": .keywords(["emea"])])) == ["deal-6", "deal-4", "deal-2", "deal-0"])
            #expect(try await ids(RunQuery(searchAttributes: ["size": .int(800)])) == ["deal-4"], "upserted again: 2 × 400")
            #expect(try await ids(RunQuery(searchAttributes: ["size": .int(400)])).isEmpty)
            #expect(try await ids(RunQuery(searchAttributes: ["score": .double(1.5)])) == ["deal-3"])
            #expect(try await ids(RunQuery(searchAttributes: ["hot": .bool(true)])) == ["deal-2", "deal-1", "deal-0"])
            #expect(try await ids(RunQuery(searchAttributes: ["due": .date(Self.due.addingTimeInterval(86_400))]))
                    == ["deal-5", "deal-3", "deal-1"])
            #expect(try await ids(RunQuery(searchAttributes: ["owner": .string("ada")])).count == 6, "deal-4 removed it")
            #expect(try await ids(RunQuery(stage: "qualifying",
                                           searchAttributes: ["region": .keywords(["apac"]), "hot": .bool(true)]))
                    == ["deal-2", "deal-0"])

            // Keyset paging, two at a time, through the emea deals.
            var pages: [[String]] = []
            var after: (Date, String)?
            repeat {
                let page = try await env.client.list(RunQuery(
                    searchAttributes: ["region": .keywords(["emea"])], limit: 2, after: after))
                if page.isEmpty { break }
                pages.append(page.map(\.workflowID))
                after = page.last.map { ($0.createdAt, $0.runID) }
            } while true
            #expect(pages == [["deal-6", "deal-4"], ["deal-2", "deal-0"]])

            let description = try await env.client.describe(workflowID: "deal-4")
            #expect(description.run.stage == "negotiating")
            #expect(description.searchAttributes == [
                "region": .keywords(["apac", "emea"]), "size": .int(800), "score": .double(2), "hot": .bool(false),
                "due": .date(Self.due),
            ])
            #expect(try await env.client.searchAttributeKind(named: "size") == "int")
            #expect(try await env.client.searchAttributeKind(named: "nothing") == nil)
        }
    }

    @Test("a run continued as new keeps its stage and attributes; a NaN attribute fails the run clearly",
          arguments: StoreBackend.allCases)
    func carriedAndRefused(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            _ = try await env.client.start(IndexedDeal.self, id: "chain", input: .init(
                regions: ["apac"], size: 1, score: 0, hot: true, due: Self.due, continueFirst: true))
            try await env.runUntilIdle()
            let latest = try await env.client.list(RunQuery(
                stage: "qualifying", searchAttributes: ["region": .keywords(["apac"])], latestRunPerWorkflow: true))
            let current = try #require(try await env.store.findRun(workflowID: "chain"))
            #expect(latest.map(\.runID) == [current.runID])
            #expect(current.previousRunID != nil)
            #expect(try await env.client.describe(workflowID: "chain").searchAttributes["region"] == .keywords(["apac"]))

            let bad = try await env.client.start(BadAttribute.self, id: "bad", input: "nan")
            let run = try await env.waitForClose(runID: bad.runID)
            #expect(run.status == .failed)
            #expect(run.failure?.type == "InvalidValue")
            #expect(run.failure?.message.contains("score") == true)
            await #expect(throws: KeelError.self) {
                try await env.client.list(RunQuery(searchAttributes: ["score": .double(.nan)]))
            }
        }
    }
}
