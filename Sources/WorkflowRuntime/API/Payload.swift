import Foundation

/// An encoded value crossing the engine: a workflow's input or result, an activity's input or
/// result, a signal's payload. Payloads are JSON by default.
public struct Payload: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The encoded bytes (UTF-8 JSON for the default codec).
    public var data: Data

    public init(data: Data) { self.data = data }

    /// A payload from JSON text. The text is not validated here; decoding validates it.
    public init(json: String) { self.data = Data(json.utf8) }

    /// The empty JSON object, for workflows and activities whose input is `{}`-like.
    public static let emptyObject = Payload(json: "{}")

    public var description: String { String(decoding: data, as: UTF8.self) }

    /// Encodes a value with the default JSON codec.
    /// - Throws: ``KeelError`` `.payloadEncoding`, naming the value's type.
    public static func encode<T: Encodable>(_ value: T) throws -> Payload {
        do {
            return Payload(data: try JSONEncoder.keel.encode(value))
        } catch {
            throw KeelError(.payloadEncoding, "cannot encode a value of type \(String(reflecting: T.self)) as JSON: \(error)")
        }
    }

    /// Decodes the payload as `T`.
    /// - Throws: ``KeelError`` `.payloadDecoding`, naming the expected type and the payload.
    public func decode<T: Decodable>(as type: T.Type = T.self) throws -> T {
        do {
            return try JSONDecoder.keel.decode(T.self, from: data)
        } catch {
            throw KeelError(.payloadDecoding, "cannot decode \(String(reflecting: T.self)) from \(Payload.abbreviated(self)): \(Payload.describe(error))")
        }
    }

    /// The deepest nesting of arrays and objects a payload may have. JSON parsers refuse deeper
    /// documents (Foundation's at 512); Keel refuses them where they enter, with this message.
    public static let maximumNestingDepth = 256

    /// Checks that the payload is well-formed JSON, nested at most ``maximumNestingDepth`` deep.
    /// - Throws: ``KeelError`` `.malformedInput` naming the problem.
    public func validateJSON() throws {
        if Self.nestsDeeper(data, than: Self.maximumNestingDepth) {
            throw KeelError(.malformedInput, "JSON is nested too deeply: more than \(Self.maximumNestingDepth) levels of arrays or objects")
        }
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            let reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey].map { " (\($0))" } ?? ""
            throw KeelError(.malformedInput, "payload is not valid JSON\(reason): \(Payload.abbreviated(self))")
        }
    }

    // Golden history files show payloads as JSON text.
    public init(from decoder: Decoder) throws {
        self.init(json: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// Whether arrays and objects nest more than `limit` deep (scanning stops there). Brackets
    /// inside strings do not count.
    static func nestsDeeper(_ data: Data, than limit: Int) -> Bool {
        var depth = 0
        var inString = false
        var escaped = false
        for byte in data {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > limit { return true }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return false
    }

    static func abbreviated(_ payload: Payload) -> String {
        let text = payload.description
        return text.count > 120 ? String(text.prefix(120)) + "…" : text
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "missing key '\(key.stringValue)'"
        case DecodingError.typeMismatch(let type, let context):
            return "expected \(type) at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        case DecodingError.valueNotFound(let type, let context):
            return "missing \(type) at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        case DecodingError.dataCorrupted(let context):
            // The parser's own reason (e.g. a number out of range) is more useful than "not valid JSON".
            if let underlying = context.underlyingError { return "\(context.debugDescription) (\(underlying))" }
            return context.debugDescription
        default: return String(describing: error)
        }
    }
}

extension JSONEncoder {
    /// The encoder Keel uses for payloads and stored attributes.
    static var keel: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .millisecondsSince1970
        return encoder
    }
}

extension JSONDecoder {
    static var keel: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return decoder
    }
}
