import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import WorkflowRuntime

/// One provider's HTTP API: JSON requests to its base URL, the activity's idempotency key as
/// `Idempotency-Key`, the credential as a bearer token, and the provider's answers turned into
/// the errors the engine retries rightly.
///
/// - 2xx: the answer's `id` (or `messageId`, `message_id`) is the provider's id of the message.
/// - 429 and 5xx: retryable (`ProviderUnavailable`); a `Retry-After` (seconds or an HTTP date)
///   sets the next attempt's delay.
/// - other 4xx: not retryable (`ProviderRejected`), with the provider's own message.
/// - no answer within the timeout, or no connection: retryable (`ProviderUnreachable`).
///
/// The credential appears in no error, log line or history event: errors name only the
/// operation, the status and the provider's message (with any echo of the credential removed).
public struct ProviderHTTPClient: Sendable {
    public let name: String
    public let baseURL: URL
    private let credential: String?
    private let timeout: Duration

    /// - Parameters:
    ///   - name: the provider's name in errors (`email provider`).
    ///   - credential: sent as `Authorization: Bearer …` (read from the environment by the caller).
    public init(name: String, baseURL: URL, credential: String?, timeout: Duration) {
        self.name = name
        self.baseURL = baseURL
        self.credential = credential
        self.timeout = timeout
    }

    /// The biggest answer read from a provider.
    static let maximumResponseBytes = 1 << 20

    /// POSTs `body` as JSON to `path` under the base URL. - Returns: the provider's id for it, if it gave one.
    /// - Throws: ``ApplicationError`` typed `ProviderUnavailable`, `ProviderRejected` or `ProviderUnreachable`.
    public func post<Body: Encodable>(_ path: String, _ body: Body, idempotencyKey: String) async throws -> String? {
        try await request(.POST, path, body: try JSONEncoder.keel.encode(body), idempotencyKey: idempotencyKey).id
    }

    /// GETs `path` under the base URL (a status, read without side effects).
    /// - Throws: as ``post(_:_:idempotencyKey:)``.
    public func get(_ path: String) async throws -> ProviderAnswer {
        try await request(.GET, path, body: nil, idempotencyKey: nil)
    }

    private func request(_ method: HTTPMethod, _ path: String, body: Data?, idempotencyKey: String?) async throws
        -> ProviderAnswer
    {
        // `path` is already percent-encoded (ids in it are ``PathSegment``s).
        var root = baseURL.absoluteString
        while root.hasSuffix("/") { root.removeLast() }
        var request = HTTPClientRequest(url: "\(root)/\(path)")
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        if let idempotencyKey { request.headers.add(name: "Idempotency-Key", value: idempotencyKey) }
        if let credential { request.headers.add(name: "Authorization", value: "Bearer \(credential)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let operation = "\(method.rawValue) /\(path)"
        let status: HTTPResponseStatus
        let headers: HTTPHeaders
        let answer: ByteBuffer
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
            status = response.status
            headers = response.headers
            answer = try await response.body.collect(upTo: Self.maximumResponseBytes)
        } catch {
            // A cancelled attempt (worker shutdown, the workflow's cancel) stays a cancellation.
            if Task.isCancelled { throw CancellationError() }
            throw ApplicationError(
                "\(name) \(operation) got no answer: \(redacted(String(describing: error)))",
                type: "ProviderUnreachable")
        }
        let text = String(buffer: answer)
        switch status.code {
        case 200..<300:
            return ProviderAnswer(text)
        case 429, 500..<600:
            throw ApplicationError(
                "\(name) \(operation) answered \(status.code): \(redacted(Self.message(in: text)))",
                type: "ProviderUnavailable",
                nextRetryDelay: headers.first(name: "Retry-After").flatMap { RetryAfter.delay($0, now: Date()) })
        default:
            throw ApplicationError(
                "\(name) \(operation) refused the request (\(status.code)): \(redacted(Self.message(in: text)))",
                type: "ProviderRejected", nonRetryable: true)
        }
    }

    /// `text` with every occurrence of the credential replaced.
    private func redacted(_ text: String) -> String {
        guard let credential, !credential.isEmpty else { return text }
        return text.replacingOccurrences(of: credential, with: "[credential]")
    }

    /// The provider's message in an error answer: `error.message`, `message` or `error`, else the
    /// text itself (at most 500 characters).
    static func message(in text: String) -> String {
        if let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] {
            if let error = object["error"] as? [String: Any], let message = error["message"] as? String {
                return message
            }
            if let message = object["message"] as? String { return message }
            if let error = object["error"] as? String { return error }
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? "(no message)" : String(trimmed.prefix(500))
    }
}

/// A provider's successful answer: its id for what was created, and its top-level text fields.
public struct ProviderAnswer: Sendable, Hashable {
    /// `id`, `messageId` or `message_id`.
    public var id: String?
    /// The answer's top-level strings and numbers, as text (`status`, ...).
    public var fields: [String: String]

    init(_ text: String) {
        var fields: [String: String] = [:]
        if let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] {
            for (key, value) in object {
                if let text = value as? String {
                    fields[key] = text
                } else if let number = value as? NSNumber {
                    fields[key] = number.stringValue
                }
            }
        }
        self.fields = fields
        id = fields["id"] ?? fields["messageId"] ?? fields["message_id"]
    }
}

/// Reads a `Retry-After` header.
enum RetryAfter {
    /// The delay a `Retry-After` value asks for: whole seconds, or an HTTP date (RFC 9110);
    /// `nil` for anything else. Capped at a day, so a hostile value cannot park a send for years.
    static func delay(_ value: String, now: Date) -> Duration? {
        let value = value.trimmingCharacters(in: .whitespaces)
        let seconds: Double
        if let whole = Int(value), whole >= 0 {
            seconds = Double(whole)
        } else if let date = httpDate(value) {
            seconds = max(0, date.timeIntervalSince(now))
        } else {
            return nil
        }
        return .milliseconds(Int64(min(seconds, 86_400) * 1000))
    }

    private static func httpDate(_ value: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = .gmt
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.date(from: value)
    }
}

extension Duration {
    /// The duration in whole nanoseconds, saturating.
    fileprivate var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : whole.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }
}
