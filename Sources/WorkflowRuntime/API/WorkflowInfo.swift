import Foundation

/// Identity of a workflow run, as seen by its code.
public struct WorkflowInfo: Sendable, Hashable {
    public var workflowID: String
    public var runID: String
    public var workflowType: String
    public var startedAt: Date
    /// The parent, for a child workflow (see ``WorkflowContext/startChild(_:id:input:options:)``).
    public var parent: ParentWorkflowInfo?

    public init(
        workflowID: String, runID: String, workflowType: String, startedAt: Date, parent: ParentWorkflowInfo? = nil
    ) {
        self.workflowID = workflowID
        self.runID = runID
        self.workflowType = workflowType
        self.startedAt = startedAt
        self.parent = parent
    }
}

/// A deterministic random number generator for workflow code, seeded by the run id
/// (SplitMix64): the same run draws the same numbers on every replay.
public final class WorkflowRandom: RandomNumberGenerator, @unchecked Sendable {
    private var state: UInt64

    init(seed: String) {
        // FNV-1a of the seed text.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in seed.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        state = hash
    }

    public func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// A version-4 UUID drawn from this generator.
    func uuid() -> UUID {
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in stride(from: 0, to: 16, by: 8) {
            withUnsafeBytes(of: next()) { raw in
                for offset in 0..<8 { bytes[index + offset] = raw[offset] }
            }
        }
        bytes[6] = (bytes[6] & 0x0f) | 0x40
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        return UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            ))
    }
}
