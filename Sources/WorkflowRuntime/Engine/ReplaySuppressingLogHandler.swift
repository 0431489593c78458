import Logging

/// Drops log records while the run is replaying, so workflow code logs each line once, not once
/// per replay.
struct ReplaySuppressingLogHandler: LogHandler {
    var base: any LogHandler
    let isReplaying: @Sendable () -> Bool

    var metadata: Logger.Metadata {
        get { base.metadata }
        set { base.metadata = newValue }
    }

    var logLevel: Logger.Level {
        get { base.logLevel }
        set { base.logLevel = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { base[metadataKey: key] }
        set { base[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        guard !isReplaying() else { return }
        base.log(event: event)
    }
}
