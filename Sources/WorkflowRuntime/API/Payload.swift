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
            throw KeelError(
                .payloadEncoding, "cannot encode a value of type \(String(reflecting: T.self)) as JSON: \(error)")
        }
    }

    /// Decodes the payload as `T`.
    /// - Throws: ``KeelError`` `.payloadDecoding`, naming the expected type and the payload.
    public func decode<T: Decodable>(as type: T.Type = T.self) throws -> T {
        do {
            return try JSONDecoder.keel.decode(T.self, from: data)
        } catch {
            throw KeelError(
                .payloadDecoding,
                "cannot decode \(String(reflecting: T.self)) from \(Payload.abbreviated(self)): "
                    + "\(Payload.describe(error))"
            )
        }
    }

    /// The deepest nesting of arrays and objects a payload may have. JSON parsers refuse deeper
    /// documents (Foundation's at 512); Keel refuses them where they enter, with this message.
    public static let maximumNestingDepth = 256

    /// Checks that the payload is well-formed JSON, nested at most ``maximumNestingDepth`` deep.
    /// - Throws: ``KeelError`` `.malformedInput` naming the problem.
    public func validateJSON() throws {
        if Self.nestsDeeper(data, than: Self.maximumNestingDepth) {
            throw KeelError(
                .malformedInput,
                "JSON is nested too deeply: more than \(Self.maximumNestingDepth) levels of arrays or objects")
        }
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            let reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey].map { " (\($0))" } ?? ""
            throw KeelError(.malformedInput, "payload is not valid JSON\(reason): \(Payload.abbreviated(self))")
        }
    }

    /// Stored histories and golden files carry a payload as its JSON text, in a string. Output for
    /// scripts (``PayloadEmbedding``, `--json`) carries it as the JSON value itself.
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        guard decoder.userInfo[.payloadsAsJSONValues] as? Bool == true else {
            self.init(json: try container.decode(String.self))
            return
        }
        let value = try container.decode(JSONValue.self)
        if case .object(let object) = value, object.count == 1, case .string(let base64)? = object[Self.base64Key],
            let data = Data(base64Encoded: base64)
        {
            self.init(data: data)
        } else {
            self.init(data: try JSONEncoder.keel.encode(value))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        if let embedding = encoder.userInfo[.payloadEmbedding] as? PayloadEmbedding {
            try container.encode(embedding.placeholder(for: self))
        } else {
            try container.encode(description)
        }
    }

    /// The key of the object that stands for a payload that is not JSON: `{"$payloadBase64": "..."}`.
    public static let base64Key = "$payloadBase64"

    /// Whether arrays and objects nest more than `limit` deep (scanning stops there). Brackets
    /// inside strings do not count.
    static func nestsDeeper(_ data: Data, than limit: Int) -> Bool {
        var depth = 0
        var inString = false
        var escaped = false
        for byte in data {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
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
    /// The encoder Keel uses for payloads and stored attributes: keys sorted, dates as ISO-8601
    /// text in UTC with milliseconds (`2026-12-03T09:30:00.250Z`).
    package static var keel: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(PayloadDates.withMilliseconds))
        }
        return encoder
    }
}

extension JSONDecoder {
    /// Decodes what ``JSONEncoder/keel`` writes; dates also as milliseconds since 1970 (as earlier
    /// versions wrote them) and as ISO-8601 text without fractional seconds.
    package static var keel: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            if let milliseconds = try? container.decode(Double.self) {
                return Date(timeIntervalSince1970: milliseconds / 1000)
            }
            let text = try container.decode(String.self)
            if let date = (try? PayloadDates.withMilliseconds.parse(text))
                ?? (try? PayloadDates.wholeSeconds.parse(text))
            {
                return date
            }
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not an ISO-8601 date such as 2026-12-03T09:30:00Z")
        }
        return decoder
    }
}

/// The date formats of payloads.
enum PayloadDates {
    static let withMilliseconds = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    static let wholeSeconds = Date.ISO8601FormatStyle()
}

extension CodingUserInfoKey {
    /// Set to a ``PayloadEmbedding`` to encode payloads as JSON values (see ``PayloadEmbedding``).
    package static let payloadEmbedding = CodingUserInfoKey(rawValue: "keel.payloadEmbedding")!
    /// Set to `true` to decode payloads written as JSON values (output of ``PayloadEmbedding``).
    package static let payloadsAsJSONValues = CodingUserInfoKey(rawValue: "keel.payloadsAsJSONValues")!
}
