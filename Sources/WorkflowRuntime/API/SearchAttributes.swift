import Foundation

/// A typed value a run is indexed by (``WorkflowContext/upsertSearchAttributes(_:)``), so runs can
/// be listed by it (`worker list --attr NAME=VALUE`, ``RunQuery/searchAttributes``).
public enum SearchAttributeValue: Sendable, Hashable {
    /// Free text, matched whole.
    case string(String)
    /// A list of keywords; a filter on one of them matches. An empty list removes the attribute.
    case keywords([String])
    case int(Int)
    /// Finite only.
    case double(Double)
    case bool(Bool)
    case date(Date)

    /// The kind stored beside the value, one per attribute name.
    public var kind: String {
        switch self {
        case .string: "string"
        case .keywords: "keywords"
        case .int: "int"
        case .double: "double"
        case .bool: "bool"
        case .date: "date"
        }
    }

    /// The value as text, for tables and filters: dates in ISO-8601.
    public var text: String {
        switch self {
        case .string(let value): value
        case .keywords(let values): values.joined(separator: ",")
        case .int(let value): "\(value)"
        case .double(let value): "\(value)"
        case .bool(let value): "\(value)"
        case .date(let value): value.formatted(.iso8601)
        }
    }

    /// Parses `text` as a value of `kind` (what a command-line filter gives): a keyword list
    /// filter is one keyword; dates are ISO-8601.
    /// - Throws: ``KeelError`` `.invalidArgument` naming the attribute when `text` is not of that kind.
    public static func parse(_ text: String, kind: String, name: String) throws -> SearchAttributeValue {
        let parsed: SearchAttributeValue? =
            switch kind {
            case "string": .string(text)
            case "keywords": .keywords([text])
            case "int": Int(text).map(SearchAttributeValue.int)
            case "double": Double(text).flatMap { $0.isFinite ? .double($0) : nil }
            case "bool": Bool(text).map(SearchAttributeValue.bool)
            case "date": (try? Date(text, strategy: .iso8601)).map(SearchAttributeValue.date)
            default: nil
            }
        guard let parsed else {
            throw KeelError(
                .invalidArgument, "search attribute '\(name)' holds \(kind) values, and '\(text)' is not one")
        }
        return parsed
    }
}

extension SearchAttributeValue: Codable {
    private enum Key: String, CodingKey { case string, keywords, int, double, bool, date }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        if let value = try c.decodeIfPresent(String.self, forKey: .string) {
            self = .string(value)
        } else if let value = try c.decodeIfPresent([String].self, forKey: .keywords) {
            self = .keywords(value)
        } else if let value = try c.decodeIfPresent(Int.self, forKey: .int) {
            self = .int(value)
        } else if let value = try c.decodeIfPresent(Double.self, forKey: .double) {
            self = .double(value)
        } else if let value = try c.decodeIfPresent(Bool.self, forKey: .bool) {
            self = .bool(value)
        } else if let value = try c.decodeIfPresent(Date.self, forKey: .date) {
            self = .date(value)
        } else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "no search attribute value"))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        switch self {
        case .string(let value): try c.encode(value, forKey: .string)
        case .keywords(let values): try c.encode(values, forKey: .keywords)
        case .int(let value): try c.encode(value, forKey: .int)
        case .double(let value): try c.encode(value, forKey: .double)
        case .bool(let value): try c.encode(value, forKey: .bool)
        case .date(let value): try c.encode(value, forKey: .date)
        }
    }
}

extension SearchAttributeValue {
    /// The rows one attribute is indexed as: text (strings, each keyword) or a number (ints,
    /// doubles, bools as 0/1, dates as seconds since 1970).
    package var indexed: [(text: String?, number: Double?)] {
        switch self {
        case .string(let value): [(value, nil)]
        case .keywords(let values): Array(Set(values)).sorted().map { ($0, nil) }
        case .int(let value): [(nil, Double(value))]
        case .double(let value): [(nil, value)]
        case .bool(let value): [(nil, value ? 1 : 0)]
        case .date(let value): [(nil, value.timeIntervalSince1970)]
        }
    }

    /// The value stored as `rows` of `kind` (the inverse of ``indexed``); an unknown kind reads as text.
    package init(kind: String, rows: [(text: String?, number: Double?)]) {
        let number = rows.first?.number ?? 0
        switch kind {
        case "keywords": self = .keywords(rows.map { $0.text ?? "" })
        case "int": self = .int(Int(exactly: number.rounded()) ?? 0)
        case "double": self = .double(number)
        case "bool": self = .bool(number == 1)
        case "date": self = .date(Date(timeIntervalSince1970: number))
        default: self = .string(rows.first?.text ?? "")
        }
    }

    /// Limits on what one upsert may hold, checked before anything is recorded.
    static let maximumAttributes = 64
    static let maximumKeywords = 100

    /// - Throws: ``InvalidValueError`` for a NaN or infinite double, or too many keywords.
    func validate(name: String) throws {
        switch self {
        case .double(let value) where !value.isFinite:
            throw InvalidValueError(
                name: "search attribute '\(name)'", value: "\(value)", requirement: "a finite number")
        case .keywords(let values) where values.count > Self.maximumKeywords:
            throw InvalidValueError(
                name: "search attribute '\(name)'", value: "\(values.count) keywords",
                requirement: "at most \(Self.maximumKeywords)")
        case .string(let value):
            try NameRules.check(value, as: "the value of search attribute '\(name)'")
        case .keywords(let values):
            for value in values { try NameRules.check(value, as: "a keyword of search attribute '\(name)'") }
        default: break
        }
    }
}
