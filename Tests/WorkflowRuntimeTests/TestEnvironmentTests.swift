import Foundation
import Testing
import WorkflowRuntime
import WorkflowTesting

@Suite("The time-skipping test environment")
struct TestEnvironmentTests {
    @Test("shutdown deletes only a database file the environment created, never one it was given")
    func keepsGivenDatabase() async throws {
        let given = FileManager.default.temporaryDirectory.appendingPathComponent("keel-given-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: given + suffix) } }
        let first = try await TestWorkflowEnvironment(registry: testRegistry(), databasePath: given)
        let handle = try await first.client.start(LongSleep.self, id: "kept", input: .init(days: 1, text: "x"))
        first.shutdown()
        #expect(FileManager.default.fileExists(atPath: given))

        // The same file serves a second environment (e.g. the same runs with changed code).
        let second = try await TestWorkflowEnvironment(registry: testRegistry(), databasePath: given)
        #expect(try await second.result(of: handle, as: LongSleep.self).text == "X")
        second.shutdown()
        #expect(FileManager.default.fileExists(atPath: given))

        let own = try await TestWorkflowEnvironment(registry: testRegistry())
        let created = try #require(own.databasePath)
        #expect(FileManager.default.fileExists(atPath: created))
        own.shutdown()
        #expect(!FileManager.default.fileExists(atPath: created))
    }
}
