import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A real HTTP server on 127.0.0.1 for the provider tests: it records every request (with its
/// headers and the time it arrived) and answers as the test's responder says — a status, headers,
/// a body, after a delay.
public final class LoopbackHTTPServer: Sendable {
    public struct Request: Sendable {
        public var method: String
        public var path: String
        /// Header names lowercased.
        public var headers: [String: String]
        public var body: String
        public var receivedAt: Date
        /// 1 for the first request carrying this `Idempotency-Key`, then 2, 3...
        public var attemptOfKey: Int

        public var idempotencyKey: String? { headers["idempotency-key"] }
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: String
        public var delay: Duration

        public init(status: Int = 200, headers: [String: String] = [:], body: String = "{}", delay: Duration = .zero) {
            self.status = status
            self.headers = headers
            self.body = body
            self.delay = delay
        }

        /// 200 with `{"id": ID}`.
        public static func accepted(id: String) -> Response { Response(body: #"{"id": "\#(id)"}"#) }
    }

    public typealias Responder = @Sendable (Request) -> Response

    private struct State {
        var requests: [Request] = []
        var connections = 0
        var responder: Responder
    }

    private let state: Mutex<State>
    private let channel: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
    private let serving: Mutex<Task<Void, Never>?> = Mutex(nil)
    /// `http://127.0.0.1:PORT`.
    public let url: URL

    /// Starts a server on a free loopback port; by default it accepts every request with a new id.
    public static func start(responder: @escaping Responder = { .accepted(id: "msg-\($0.idempotencyKey ?? "?")") })
        async throws -> LoopbackHTTPServer
    {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                        wrappingChannelSynchronously: child)
                }
            }
        let server = LoopbackHTTPServer(channel: channel, responder: responder)
        server.serving.withLock { $0 = Task { await server.serve() } }
        return server
    }

    private init(
        channel: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>,
        responder: @escaping Responder
    ) {
        self.channel = channel
        self.state = Mutex(State(responder: responder))
        self.url = URL(string: "http://127.0.0.1:\(channel.channel.localAddress?.port ?? 0)")!
    }

    /// Every request so far, in arrival order.
    public var requests: [Request] { state.withLock { $0.requests } }
    /// The connections accepted so far.
    public var connections: Int { state.withLock { $0.connections } }

    /// Answers the next requests with `responder`.
    public func respond(with responder: @escaping Responder) {
        state.withLock { $0.responder = responder }
    }

    public func shutdown() async {
        try? await channel.channel.close()
        serving.withLock { $0 }?.cancel()
    }

    private func serve() async {
        try? await withThrowingDiscardingTaskGroup { group in
            try await channel.executeThenClose { connections in
                for try await connection in connections {
                    state.withLock { $0.connections += 1 }
                    group.addTask { try? await self.handle(connection) }
                }
            }
        }
    }

    private func handle(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async throws {
        try await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            var body = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let requestHead):
                    head = requestHead
                    body.clear()
                case .body(var chunk):
                    body.writeBuffer(&chunk)
                case .end:
                    guard let requestHead = head else { continue }
                    let response = record(requestHead, body: String(buffer: body))
                    if response.delay > .zero { try await Task.sleep(for: response.delay) }
                    var headers = HTTPHeaders()
                    headers.add(name: "Content-Type", value: "application/json")
                    headers.add(name: "Content-Length", value: "\(response.body.utf8.count)")
                    for (name, value) in response.headers { headers.add(name: name, value: value) }
                    try await outbound.write(
                        .head(
                            HTTPResponseHead(
                                version: requestHead.version, status: HTTPResponseStatus(statusCode: response.status),
                                headers: headers)))
                    try await outbound.write(.body(.byteBuffer(ByteBuffer(string: response.body))))
                    try await outbound.write(.end(nil))
                }
            }
        }
    }

    private func record(_ head: HTTPRequestHead, body: String) -> Response {
        var headers: [String: String] = [:]
        for (name, value) in head.headers { headers[name.lowercased()] = value }
        return state.withLock { state in
            let key = headers["idempotency-key"]
            let earlier = state.requests.filter { key != nil && $0.idempotencyKey == key }.count
            let request = Request(
                method: head.method.rawValue, path: head.uri, headers: headers, body: body, receivedAt: Date(),
                attemptOfKey: earlier + 1)
            state.requests.append(request)
            return state.responder(request)
        }
    }
}
