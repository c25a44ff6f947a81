import AsyncHTTPClient
import FluePersistence
import FluePostgres
import FlueRuntime
import FlueSQLite
import Foundation
import PropertyBased
import TestDatabase
import Testing

/// The adapters every stream read runs on.
enum ReadAdapter: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory, sqlite, postgres
    var testDescription: String { rawValue }

    /// Connected stores and a closer; `nil` for Postgres when no test database is configured
    /// outside CI.
    func open() async throws -> (FlueStores, @Sendable () async -> Void)? {
        switch self {
        case .memory:
            return (.inMemory(), {})
        case .sqlite:
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("flue-reads-\(UUID().uuidString).sqlite").path
            let adapter = SQLitePersistence(path: path)
            try await adapter.migrate()
            return (try await adapter.connect(), {
                try? await adapter.close()
                try? FileManager.default.removeItem(atPath: path)
            })
        case .postgres:
            guard ProcessInfo.processInfo.environment["TEST_DATABASE_URL"] != nil || ProcessInfo.processInfo.environment["CI"] != nil
            else { return nil }
            let adapter = try PostgresPersistence(url: try await TestDatabase.fresh())
            try await adapter.migrate()
            return (try await adapter.connect(), { try? await adapter.close() })
        }
    }
}

/// Random and extreme `offset`, `tail`, `cursor` and `live` values against every read mode of
/// run and agent streams, on every adapter: each answer is a 2xx/304 or a 4xx error envelope,
/// never a trap or a 5xx, and the server stays up (issue 10, item 1).
@Suite struct StreamReadPropertyTests {
    static func offset(_ shape: Int, _ n: Int64, _ m: Int64) -> String? {
        switch shape {
        case 0: "-1"
        case 1: "now"
        case 2: String(format: "0000000000000000_%016lld", Int64(n.magnitude % 12))  // within or near the stream
        case 3: "0000000000000000_" + String(n.magnitude)
        case 4: "\(n)_\(m)"
        case 5: "0_\(n.magnitude)"
        case 6: String(n)
        case 7: "0000000000000000_9223372036854775807"
        case 8: "0000000000000001_0000000000000000"
        case 9: "0000000000000000_-000000000000001"
        case 10: String(repeating: "9", count: 40) + "_1"
        default: nil
        }
    }

    static func tail(_ shape: Int, _ m: Int64) -> String? {
        switch shape {
        case 0: String(m.magnitude)
        case 1: "9223372036854775807"
        case 2: "0"
        case 3: "-1"
        case 4: "99999999999999999999999999"
        case 5: "1"
        default: nil
        }
    }

    static func cursor(_ shape: Int, _ m: Int64) -> String? {
        switch shape {
        case 0: String(m)
        case 1: "9223372036854775807"
        case 2: "-9223372036854775808"
        case 3: "not-a-number"
        default: nil
        }
    }

    static let lives: [String?] = [nil, "long-poll", "sse", "websocket"]

    @Test(arguments: ReadAdapter.allCases)
    func anyReadQueryGetsA2xxOrA4xxEnvelopeAndTheServerLives(adapter: ReadAdapter) async throws {
        guard let opened = try await adapter.open() else { return }
        let (stores, close) = opened
        let f = try await ServerFixture.start(stores: stores) { $0.longPollTimeout = .milliseconds(100) }
        let runId = try await f.startRun("logs", #"{"count":5}"#)
        _ = try await f.readToEnd(runId)
        let prompt = try await f.post("/agents/assistant/x?wait=result", #"{"message":"hello"}"#)
        #expect(prompt.status == 200, "\(prompt.text)")
        let paths = ["/runs/\(runId)", "/agents/assistant/x"]

        await propertyCheck(
            count: 60, input: Gen.int64(), Gen.int64(), Gen.int(in: 0...11), Gen.int(in: 0...6), Gen.int(in: 0...19)
        ) { n, m, offsetShape, tailShape, mix in
            var parameters: [String] = []
            if let offset = Self.offset(offsetShape, n, m) { parameters.append("offset=\(offset)") }
            if let tail = Self.tail(tailShape, m) { parameters.append("tail=\(tail)") }
            if let cursor = Self.cursor(mix % 5, m) { parameters.append("cursor=\(cursor)") }
            let live = Self.lives[mix % 4]
            if let live { parameters.append("live=\(live)") }
            let query = parameters.joined(separator: "&")
            for path in paths {
                let status: Int
                var errorType: String?
                if live == "sse" {
                    var request = HTTPClientRequest(url: f.baseURL + path + "?" + query)
                    request.method = .GET
                    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                    status = Int(response.status.code)
                    // A live SSE read never ends by itself: read for a moment, then hang up.
                    let reader = Task { try await response.body.collect(upTo: 1 << 20) }
                    let hangUp = Task {
                        try await Task.sleep(for: .milliseconds(300))
                        reader.cancel()
                    }
                    let body = try? await reader.value
                    hangUp.cancel()
                    if status >= 400, let body {
                        errorType = (try? JSONValue(parsing: Data(body.readableBytesView)))?["error"]?["type"]?.stringValue
                    }
                } else {
                    let reply = try await f.get(path + "?" + query)
                    status = reply.status
                    errorType = reply.errorType
                }
                #expect((200..<300).contains(status) || status == 304 || (400..<500).contains(status), "\(path)?\(query) → \(status)")
                if (400..<500).contains(status) {
                    #expect(errorType == "invalid_request", "\(path)?\(query) → \(status) \(errorType ?? "no envelope")")
                }
                // HEAD ignores the query and always describes the stream.
                #expect(try await f.request(.HEAD, path + "?" + query).status == 200)
            }
        }

        #expect(try await f.get("/health").status == 200, "the server survived every query")
        #expect(try await f.get("/runs/\(runId)").json?.arrayValue?.count == 7)
        await f.stop()
        await close()
    }

    /// The issue's exact inputs, each with its right answer, on every adapter.
    @Test(arguments: ReadAdapter.allCases)
    func theReportedOffsetsAndTailsAnswerTheRightValues(adapter: ReadAdapter) async throws {
        guard let opened = try await adapter.open() else { return }
        let (stores, close) = opened
        let f = try await ServerFixture.start(stores: stores) { $0.longPollTimeout = .milliseconds(100) }
        let prompt = try await f.post("/agents/assistant/x?wait=result", #"{"message":"hello"}"#)
        #expect(prompt.status == 200)
        let count = try #require(try await f.get("/agents/assistant/x").json?.arrayValue?.count)
        let tailOffset = String(format: "0000000000000000_%016d", count)

        // The remote crash: an offset at Int64.max (19 digits, never issued) is a 400 in every mode,
        // and so is a well-formed offset past the tail.
        for live in ["", "&live=long-poll", "&live=sse"] {
            let reply = try await f.request(.GET, "/agents/assistant/x?offset=0000000000000000_9223372036854775807\(live)", timeout: .seconds(5))
            #expect(reply.status == 400, "live=\(live)")
            #expect(reply.errorType == "invalid_request")
            #expect(reply.json?["error"]?["details"] == "Invalid offset format.")
            let ahead = try await f.request(.GET, "/agents/assistant/x?offset=0000000000000000_9999999999999999\(live)", timeout: .seconds(5))
            #expect(ahead.status == 400, "live=\(live)")
            #expect(ahead.json?["error"]?["details"]?.stringValue?.contains("beyond the end of this stream") == true)
        }
        // An offset whose first component is not zero was never issued.
        let foreign = try await f.get("/agents/assistant/x?offset=0000000000000001_0000000000000000")
        #expect(foreign.status == 400)
        #expect(foreign.json?["error"]?["details"] == "Invalid offset format.")
        // A tail of Int64.max is accepted: the whole stream.
        let all = try await f.get("/agents/assistant/x?offset=-1&tail=9223372036854775807")
        #expect(all.status == 200)
        #expect(all.json?.arrayValue?.count == count)
        let huge = try await f.get("/agents/assistant/x?offset=-1&tail=99999999999999999999999999")
        #expect(huge.json?.arrayValue?.count == count)
        // A client cursor at Int64.max cannot be advanced: the current interval is answered.
        let polled = try await f.get("/agents/assistant/x?offset=\(tailOffset)&live=long-poll&cursor=9223372036854775807")
        #expect(polled.status == 204)
        let cursor = try #require(polled.header("Stream-Cursor").flatMap { Int64($0) })
        #expect(cursor < 9_223_372_036_854_775_807)
        // The tail offset itself is fine, and so is the start.
        #expect(try await f.get("/agents/assistant/x?offset=\(tailOffset)").json == [])
        #expect(try await f.get("/agents/assistant/x?offset=0000000000000000_0000000000000000").json?.arrayValue?.count == count)
        #expect(try await f.get("/health").status == 200)
        await f.stop()
        await close()
    }
}
