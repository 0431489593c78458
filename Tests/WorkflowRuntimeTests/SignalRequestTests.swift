import Foundation
import Testing
import WorkflowRuntime

@Suite("Signal request ids bind to the signal they first carried")
struct SignalRequestTests {
    @Test("a retry is a duplicate; the same id for another name or payload is refused and writes nothing", arguments: StoreBackend.allCases)
    func requestIDReuse(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let client = WorkflowClient(store: store)
            let handle = try await client.start(workflowType: "any", id: "r", input: .emptyObject)
            #expect(try await client.signal(workflowID: "r", name: "other", requestID: "A") == .delivered(runID: handle.runID))
            #expect(try await client.signal(workflowID: "r", name: "other", requestID: "A") == .duplicate(runID: handle.runID))
            for (name, payload) in [("go", Payload(json: "{\"p\":3}")), ("go", Payload.emptyObject), ("other", Payload(json: "{\"p\":3}"))] {
                let error = await #expect(throws: KeelError.self) {
                    try await client.signal(workflowID: "r", name: name, payload: payload, requestID: "A")
                }
                #expect(error?.code == .requestIDReused)
                #expect(error?.message.contains("request id 'A' was already used for a different signal") == true)
            }
            // Another run's request ids are its own.
            #expect(try await client.signal(workflowID: "r", name: "go", requestID: "B") == .delivered(runID: handle.runID))
            let inbox = try await store.pendingWork(runID: handle.runID).inbox
            #expect(inbox.count == 2, "only the two delivered signals are queued: \(inbox.map(\.detail))")
        }
    }

    @Test("names with control characters or only whitespace are refused before anything is written", arguments: StoreBackend.allCases)
    func names(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let client = WorkflowClient(store: store)
            for id in ["", " ", "a\nb", "esc\u{1B}[0m", "\u{202E}abc"] {
                let error = await #expect(throws: KeelError.self) { try await client.start(workflowType: "any", id: id, input: .emptyObject) }
                #expect(error?.code == .invalidArgument)
            }
            #expect(try await store.listRuns(RunQuery()).isEmpty)
            _ = try await client.start(workflowType: "any", id: "ok", input: .emptyObject)
            for name in ["\t", "go\u{7}"] {
                await #expect(throws: KeelError.self) { try await client.signal(workflowID: "ok", name: name) }
            }
            await #expect(throws: KeelError.self) { try await client.signal(workflowID: "ok", name: "go", requestID: "id\r\n") }
        }
    }
}
