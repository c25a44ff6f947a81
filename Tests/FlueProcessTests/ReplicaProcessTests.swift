import AsyncHTTPClient
import FlueRuntime
import FlueTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import TestDatabase
import Testing

/// Several real `hello-agents` processes on one real Postgres (`TEST_DATABASE_URL`).
@Suite(
    .serialized,
    .enabled(
        if: ProcessInfo.processInfo.environment["TEST_DATABASE_URL"] != nil
            || ProcessInfo.processInfo.environment["CI"] != nil,
        "set TEST_DATABASE_URL to run the multi-process tests"))
struct ReplicaProcessTests {
    /// Starts `hello-agents serve` on `url` (each test makes a fresh database, so the servers never
    /// meet rows left by other suites sharing the test server).
    static func start(_ model: FakeModelServer, _ url: String, _ extra: [String: String] = [:]) async throws
        -> (ChildProcess, String)
    {
        var environment = ExampleProcessTests.environment(model, ["DATABASE_URL": url])
        environment.merge(extra, uniquingKeysWith: { $1 })
        let child = try ChildProcess(arguments: ["serve"], environment: environment)
        let port = try #require(await child.listeningPort(), "no listening line in: \(child.stderr)")
        return (child, "http://127.0.0.1:\(port)")
    }

    static func get(_ url: String) async throws -> (Int, JSONValue?, HTTPHeaders) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 22)
        return (Int(response.status.code), try? JSONValue(parsing: Data(body.readableBytesView)), response.headers)
    }

    static func startTranslate(_ base: String) async throws -> String {
        try #require(try await ChildProcess.admitTranslate(base)["runId"]?.stringValue)
    }

    /// Reads an SSE response to its end and returns the events of its data frames.
    static func sseEvents(_ url: String) async throws -> (events: [JSONValue], raw: String) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(60))
        var raw = ""
        for try await buffer in response.body { raw += String(buffer: buffer) }
        let events = raw.components(separatedBy: "event: data\ndata:").dropFirst().flatMap { frame -> [JSONValue] in
            let json = frame.components(separatedBy: "\n\n").first ?? "[]"
            return (try? JSONValue(parsing: json))?.arrayValue ?? []
        }
        return (events, raw)
    }

    @Test func aRunStartedOnOneReplicaIsReadLiveFromAnother() async throws {
        let model = try await FakeModelServer.start()
        try await model.scoped {
            let database = try await TestDatabase.fresh()
            let (a, baseA) = try await Self.start(model, database)
            let (b, baseB) = try await Self.start(model, database)
            defer {
                a.signal(SIGTERM)
                b.signal(SIGTERM)
            }
            await model.enqueue(
                ScriptedReply(
                    text: "one two three four", toolCalls: [ScriptedToolCall(name: "finish", arguments: ["translation": "Bonjour", "confidence": "high"])],
                    chunkDelayMs: 100))
            let runId = try await Self.startTranslate(baseA)

            // Live on B while A is still producing events.
            let (events, raw) = try await Self.sseEvents(baseB + "/runs/\(runId)?offset=-1&live=sse")
            let types = events.compactMap { $0["type"]?.stringValue }
            #expect(types.first == "run_start")
            #expect(types.contains("text_delta"))
            #expect(types.last == "run_end")
            #expect(events.map { $0["eventIndex"]?.intValue } == Array(0..<events.count).map(Optional.some))
            #expect(raw.contains("\"streamClosed\":true"))

            let (status, meta, _) = try await Self.get(baseB + "/runs/\(runId)?meta")
            #expect(status == 200)
            #expect(meta?["status"] == "completed")
            #expect(meta?["result"] == ["translation": "Bonjour", "confidence": "high"])

            a.signal(SIGTERM)
            b.signal(SIGTERM)
            #expect(await a.waitForExit() == 0)
            #expect(await b.waitForExit() == 0)
        }
    }

    @Test func aRunOrphanedByKill9IsTerminalizedAfterRestart() async throws {
        let model = try await FakeModelServer.start()
        try await model.scoped {
            let fast = ["RUN_LEASE_SECONDS": "2", "RECOVERY_SCAN_SECONDS": "1"]
            let database = try await TestDatabase.fresh()
            let (a, baseA) = try await Self.start(model, database, fast)
            await model.enqueue(ScriptedReply(text: String(repeating: "slow ", count: 200), chunkDelayMs: 200))
            let runId = try await Self.startTranslate(baseA)
            try await Task.sleep(for: .milliseconds(600))
            a.signal(SIGKILL)
            _ = await a.waitForExit()

            let (b, baseB) = try await Self.start(model, database, fast)
            defer { b.signal(SIGTERM) }
            // A live reader on the new process is released by the terminalization.
            let (events, raw) = try await Self.sseEvents(baseB + "/runs/\(runId)?offset=-1&live=sse")
            let types = events.compactMap { $0["type"]?.stringValue }
            #expect(types.first == "run_start")
            #expect(types.suffix(2) == ["run_resume", "run_end"])
            #expect(events.last?["isError"] == true)
            #expect(events.last?["error"]?["type"] == "run_interrupted")
            #expect(events.map { $0["eventIndex"]?.intValue } == Array(0..<events.count).map(Optional.some))
            #expect(raw.contains("\"streamClosed\":true"))

            let (_, meta, _) = try await Self.get(baseB + "/runs/\(runId)?meta")
            #expect(meta?["status"] == "errored")
            #expect(meta?["error"]?["type"] == "run_interrupted")
            b.signal(SIGTERM)
            #expect(await b.waitForExit() == 0)
        }
    }
}
