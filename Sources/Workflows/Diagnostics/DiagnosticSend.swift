import Activities
import Foundation
import WorkflowRuntime

/// `diagnostics.send`: sends each message through the outbound gateway (``SendMessage``), one
/// after the other or all at once, and returns the receipts — the smallest workflow that shows
/// shadow mode, the suppression list, daily limits and the emergency stop at work.
public struct DiagnosticSend: Workflow {
    public static let name = "diagnostics.send"

    public struct Input: Codable, Sendable {
        public var messages: [OutboundMessage]
        /// Send them at once (`context.parallel`) instead of one after the other.
        public var parallel: Bool?
        /// Lease of one send's attempt (default 30): a crashed worker's send is retried after it.
        public var sendTimeoutSeconds: Double?

        public init(messages: [OutboundMessage], parallel: Bool? = nil, sendTimeoutSeconds: Double? = nil) {
            self.messages = messages
            self.parallel = parallel
            self.sendTimeoutSeconds = sendTimeoutSeconds
        }
    }

    public init() {}

    public func run(context: WorkflowContext, input: Input) async throws -> [SendReceipt] {
        guard input.messages.count <= 1000 else {
            throw ApplicationError(
                "diagnostics.send takes at most 1000 messages, got \(input.messages.count)", type: "InvalidInput",
                nonRetryable: true)
        }
        // Deferrals (emergency stop, daily limit) are retries: no attempt limit.
        let options = ActivityOptions(
            retryPolicy: RetryPolicy(initialInterval: .milliseconds(200), maximumInterval: .seconds(5)),
            startToCloseTimeout: try .checked(
                seconds: input.sendTimeoutSeconds ?? 30, "sendTimeoutSeconds", allowsZero: false))
        let send: @Sendable (OutboundMessage) async throws -> SendReceipt = { message in
            try await context.execute(SendMessage.self, message, options: options)
        }
        if input.parallel == true { return try await context.parallel(input.messages, send) }
        var receipts: [SendReceipt] = []
        for message in input.messages { receipts.append(try await send(message)) }
        return receipts
    }
}
