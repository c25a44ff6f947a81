import FlueRuntime
import Foundation
import Logging
import Synchronization

/// `LOG_FORMAT=json`: one JSON object per log line on stderr, for CloudWatch and other log
/// stores that index fields: `{"timestamp", "level", "label", "message", "source", …metadata}`
/// (metadata keys side by side; a key that collides with one of those is prefixed `metadata.`).
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    public let label: String

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [String: JSONValue] = [
            "timestamp": .string(FlueEvent.formatTimestamp(Date())), "level": .string(event.level.rawValue),
            "label": .string(label), "message": .string(event.message.description), "source": .string(event.source),
        ]
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let extra = event.metadata { all.merge(extra) { $1 } }
        if let error = event.error { all["error"] = .string("\(error)") }
        for (key, value) in all {
            fields[fields[key] == nil ? key : "metadata." + key] = Self.json(value)
        }
        Self.write(JSONValue.object(fields).jsonString + "\n")
    }

    static func json(_ value: Logger.MetadataValue) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .stringConvertible(let convertible): .string(convertible.description)
        case .array(let items): .array(items.map(json))
        case .dictionary(let entries): .object(entries.mapValues(json))
        }
    }

    /// Whole lines, one writer at a time, so lines from concurrent tasks never interleave.
    private static let lock = Mutex(())

    private static func write(_ line: String) {
        lock.withLock { _ in
            try? FileHandle.standardError.write(contentsOf: Data(line.utf8))
        }
    }

    private static let bootstrapped = Atomic<Bool>(false)

    /// Installs this handler for the process (`LoggingSystem.bootstrap`) unless this function
    /// already did; loggers made before it keep theirs.
    public static func bootstrapOnce() {
        guard bootstrapped.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        LoggingSystem.bootstrap { JSONLogHandler(label: $0) }
    }
}
