import Foundation
import Testing
import WorkflowRuntime

@Suite("Payloads in output for scripts, and dates in payloads")
struct PayloadPresentationTests {
    private struct Shown: Encodable {
        var name: String
        var input: Payload
        var results: [Payload]
    }

    private func show(_ value: Shown) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let embedding = PayloadEmbedding()
        encoder.userInfo[.payloadEmbedding] = embedding
        return embedding.embed(into: String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    @Test("a payload is embedded as its exact JSON (numbers not rounded); one that is not JSON as base64")
    func embedded() throws {
        let text = try show(Shown(name: "@keel-payload-0-0@ is only a name", input: Payload(json: #"{"big":9007199254740993,"n":[1,2.5]}"#),
                                  results: [Payload(json: #""Ada""#), Payload(data: Data([0xff, 0x00])), Payload(json: "null")]))
        #expect(text == #"{"input":{"big":9007199254740993,"n":[1,2.5]},"name":"@keel-payload-0-0@ is only a name","#
            + #""results":["Ada",{"$payloadBase64":"/wA="},null]}"#)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(((object["input"] as? [String: Any])?["n"] as? [Any])?.count == 2)
    }

    @Test("output with payloads as JSON values decodes back to the same payloads")
    func decodesBack() throws {
        let decoder = JSONDecoder()
        decoder.userInfo[.payloadsAsJSONValues] = true
        let payloads = try decoder.decode([Payload].self, from: Data(#"[{"a":1},"Ada",{"$payloadBase64":"/wA="}]"#.utf8))
        #expect(payloads == [Payload(json: #"{"a":1}"#), Payload(json: #""Ada""#), Payload(data: Data([0xff, 0x00]))])
    }

    private struct Stamped: Codable, Equatable {
        var at: Date
    }

    @Test("dates in payloads are ISO-8601 with milliseconds; the milliseconds numbers of earlier versions still decode")
    func dates() throws {
        let at = Date(timeIntervalSince1970: 1_796_186_709.966)
        let payload = try Payload.encode(Stamped(at: at))
        #expect(payload.description == #"{"at":"2026-12-02T04:45:09.966Z"}"#)
        #expect(abs(try payload.decode(as: Stamped.self).at.timeIntervalSince(at)) < 0.001)
        let earlier = try Payload(json: #"{"at":1796186709966.28}"#).decode(as: Stamped.self).at.timeIntervalSince1970
        #expect(abs(earlier - 1_796_186_709.96628) < 0.000_001)
        #expect(try Payload(json: #"{"at":"2026-12-02T04:45:09Z"}"#).decode(as: Stamped.self).at.timeIntervalSince1970 == 1_796_186_709)
        #expect(throws: KeelError.self) { try Payload(json: #"{"at":"yesterday"}"#).decode(as: Stamped.self) }
    }
}
