import FlueRuntime
@testable import FlueServer
import Foundation
import Logging
import Synchronization
import Testing

/// A log handler that keeps what it is given.
final class CapturedLogs: Sendable {
    struct Line: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let lines = Mutex<[Line]>([])
    var all: [Line] { lines.withLock { $0 } }

    func handler(label: String) -> some LogHandler { Handler(logs: self) }

    fileprivate func append(_ line: Line) { lines.withLock { $0.append(line) } }

    struct Handler: LogHandler {
        let logs: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            logs.append(Line(level: event.level, message: event.message.description, metadata: merged.mapValues { "\($0)" }))
        }
    }
}

/// Every `500 internal_error` carries a reference that the log line with the real error has too (issue 15, item 5).
@Suite struct ErrorReferenceTests {
    @Test func anInternalErrorCarriesAReferenceInTheEnvelopeTheHeaderAndTheLog() async throws {
        let logs = CapturedLogs()
        let f = try await ServerFixture.start(logger: Logger(label: "flue") { _ in CapturedLogs.Handler(logs: logs, metadata: [:]) })
        try await f.scoped {
            let first = try await f.post("/workflows/fails?wait=result", "{}")
            let second = try await f.post("/workflows/fails?wait=result", "{}")
            #expect(first.status == 500 && first.errorType == "internal_error", "\(first.text)")
            let reference = try #require(first.json?["error"]?["meta"]?["errorRef"]?.stringValue)
            #expect(reference.wholeMatch(of: /[0-9a-f]{8}/) != nil, "8 hex digits: \(reference)")
            #expect(first.header("flue-error-ref") == reference)
            #expect(second.header("flue-error-ref") != reference, "each failure has its own reference")
            #expect(!first.text.contains("TestFailure"), "the underlying error stays out of the envelope")
            let logged = try #require(logs.all.first { $0.metadata["errorRef"] == reference }, "\(logs.all.map(\.message))")
            #expect(logged.level == .error && logged.message == "internal error")
            #expect(logged.metadata["error"]?.contains("TestFailure") == true, "the log has the real error: \(logged.metadata)")
            #expect(logged.metadata["path"] == "/workflows/fails" && logged.metadata["method"] == "POST")
            // Other errors carry no reference.
            let notFound = try await f.get("/runs/run_nope?meta")
            #expect(notFound.header("flue-error-ref") == nil && notFound.json?["error"]?["meta"] == nil)
        }
    }

    @Test func jsonLogLinesAreOneObjectEach() throws {
        #expect(JSONLogHandler.json(.dictionary(["a": .array([.string("x"), .stringConvertible(3)])])) == ["a": ["x", "3"]])
        #expect(try FlueConfiguration.fromEnvironment(["LOG_FORMAT": "JSON"]).logFormat == .json)
        #expect(try FlueConfiguration.fromEnvironment([:]).logFormat == .text)
        #expect(throws: ConfigurationError.self) { try FlueConfiguration.fromEnvironment(["LOG_FORMAT": "xml"]) }
    }
}
