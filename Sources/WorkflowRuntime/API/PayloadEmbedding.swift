import Foundation
import Synchronization

/// Encodes payloads as the JSON values they hold, for output that scripts index
/// (`worker show ID --json | jq .run.result.total`), where storage keeps each as JSON text.
///
/// `JSONEncoder` cannot write raw JSON, and decoding a payload into a generic JSON value would
/// round its numbers; so each payload is encoded as a unique placeholder string, and
/// ``embed(into:)`` puts the payload's exact JSON text in its place. A payload that is not valid
/// JSON becomes `{"$payloadBase64": "..."}`.
///
/// ```swift
/// let embedding = PayloadEmbedding()
/// encoder.userInfo[.payloadEmbedding] = embedding
/// let json = embedding.embed(into: String(decoding: try encoder.encode(run), as: UTF8.self))
/// ```
package final class PayloadEmbedding: Sendable {
    private let nonce = UInt64.random(in: 0...UInt64.max)
    private let payloads = Mutex<[Payload]>([])

    package init() {}

    /// The string `payload` is encoded as until ``embed(into:)``.
    func placeholder(for payload: Payload) -> String {
        let index = payloads.withLock { payloads in
            payloads.append(payload)
            return payloads.count - 1
        }
        return Self.placeholder(nonce: nonce, index: index)
    }

    /// `json` with each placeholder string replaced by its payload's JSON.
    package func embed(into json: String) -> String {
        let payloads = payloads.withLock { $0 }
        // One pass: each placeholder is `"<prefix><index>@"`; the text between them is kept as is.
        let prefix = "\"" + Self.placeholder(nonce: nonce, index: nil)
        var parts = json.components(separatedBy: prefix)
        for index in parts.indices.dropFirst() {
            let part = parts[index]
            guard let end = part.range(of: "@\""), let number = Int(part[..<end.lowerBound]),
                payloads.indices.contains(number)
            else {
                parts[index] = prefix + part
                continue
            }
            parts[index] = Self.json(of: payloads[number]) + part[end.upperBound...]
        }
        return parts.joined()
    }

    /// `@keel-payload-<nonce>-<index>@`; without an index, the part before it.
    private static func placeholder(nonce: UInt64, index: Int?) -> String {
        "@keel-payload-\(String(nonce, radix: 16))-" + (index.map { "\($0)@" } ?? "")
    }

    /// The payload's text if it is JSON (within the nesting limit), else its bytes in base64.
    private static func json(of payload: Payload) -> String {
        let text = payload.description.trimmingCharacters(in: .whitespacesAndNewlines)
        if (try? payload.validateJSON()) != nil, !text.isEmpty { return text }
        return "{\"\(Payload.base64Key)\":\"\(payload.data.base64EncodedString())\"}"
    }
}
