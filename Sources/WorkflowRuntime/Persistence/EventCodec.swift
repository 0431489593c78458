import Foundation
import Synchronization

/// How history and inbox events are stored: the kind's name in its own column, the whole kind as JSON.
package enum EventCodec {
    package static func encode(_ kind: HistoryEvent.Kind) throws -> Data {
        try JSONEncoder.keel.encode(kind)
    }

    /// - Throws: ``KeelError`` `.storage` naming what does not decode (claims park the run on it).
    package static func decode(_ data: Data) throws -> HistoryEvent.Kind {
        do {
            return try JSONDecoder.keel.decode(HistoryEvent.Kind.self, from: data)
        } catch {
            throw KeelError(.storage, "stored event does not decode: \(Payload.describe(error))")
        }
    }

    private static let optionsCache = Mutex<[ActivityOptions: Data]>([:])

    /// Encoded activity options, cached: most activities of a deployment share a few option sets.
    package static func encode(options: ActivityOptions) throws -> Data {
        if let cached = optionsCache.withLock({ $0[options] }) { return cached }
        let data = try encode(attribute: options)
        optionsCache.withLock { cache in
            if cache.count >= 256 { cache.removeAll() }
            cache[options] = data
        }
        return data
    }

    package static func encode<T: Encodable>(attribute value: T) throws -> Data {
        try JSONEncoder.keel.encode(value)
    }

    package static func decode<T: Decodable>(attribute type: T.Type, from data: Data) throws -> T {
        try JSONDecoder.keel.decode(T.self, from: data)
    }

    /// A one-line description of an inbox event for operators.
    package static func summary(of kind: HistoryEvent.Kind) -> String {
        switch kind {
        case .signalReceived(let name, let payload, let requestID):
            "signal '\(name)' \(Payload.abbreviated(payload))" + (requestID.map { " (request \($0))" } ?? "")
        case .activityCompleted(let seq, _, let attempt): "activity #\(seq) completed (attempt \(attempt))"
        case .activityFailed(let seq, let failure, _): "activity #\(seq) failed: \(failure)"
        case .timerFired(let seq): "timer #\(seq) fired"
        case .activityCancelled(let seq): "activity #\(seq) cancelled"
        case .cancelRequested(let reason): "cancellation requested" + (reason.map { ": \($0)" } ?? "")
        case .approvalDecided, .compensationRetryRequested, .externalRequestDelivered, .externalRequestFailed:
            "\(kind.name) \(kind.detail)"
        default: kind.name
        }
    }
}
