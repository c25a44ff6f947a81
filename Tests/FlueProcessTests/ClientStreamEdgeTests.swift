import FlueClient
import FlueRuntime
import FlueTestSupport
import Foundation
import Testing

/// Events as the server writes them, `eventIndex` from `first`.
func eventsJSON(_ indices: ClosedRange<Int>) -> String {
    "[" + indices.map { #"{"eventIndex":\#($0),"timestamp":"2026-12-02T00:00:00.000Z","type":"idle","v":1}"# }.joined(separator: ",") + "]"
}

func offset(_ position: Int) -> String { String(format: "0000000000000000_%016d", position) }

func control(_ position: Int, upToDate: Bool = false, closed: Bool = false) -> String {
    var object = #"{"streamNextOffset":"\#(offset(position))""#
    if upToDate { object += #","upToDate":true"# }
    if closed { object += #","streamClosed":true"# }
    return "event: control\ndata:" + object + "}\n\n"
}

/// The stream reader against a scripted server: the edge cases of reconnecting (issue 14).
@Suite(.serialized) struct ClientStreamEdgeTests {
    func withServer(_ body: (ScriptedHTTPServer, FlueClient) async throws -> Void) async throws {
        let server = try await ScriptedHTTPServer.start()
        try await withTeardown {
            try await body(server, FlueClient(baseURL: "http://127.0.0.1:\(server.port)", prefix: "/api"))
        } teardown: {
            await server.stop()
        }
    }

    @Test func aDataFrameWhoseControlFrameNeverCameIsReadAgainNotLostOrRepeated() async throws {
        try await withServer { server, client in
            server.enqueue([
                ScriptedHTTPServer.sseHead, "event: data\ndata:\(eventsJSON(0...1))\n\n", control(2),
                "event: data\ndata:\(eventsJSON(2...3))\n\n",  // then the connection ends
            ])
            server.enqueue([ScriptedHTTPServer.sseHead, "event: data\ndata:\(eventsJSON(2...4))\n\n", control(5, upToDate: true, closed: true)])
            let events = try await client.events(of: .run("r1")).collect()
            #expect(events.map(\.eventIndex) == [0, 1, 2, 3, 4])
            #expect(events.map(\.isLastInBatch) == [false, true, false, false, true])
            #expect(server.requests == [
                "GET /api/runs/r1?offset=-1&live=sse HTTP/1.1", "GET /api/runs/r1?offset=\(offset(2))&live=sse HTTP/1.1",
            ])
        }
    }

    @Test func framesSplitAtEveryByteWithCRLFAndCRLineEndsParse() async throws {
        try await withServer { server, client in
            let body = ": heartbeat\r\n\r\nevent: data\r\ndata: \(eventsJSON(0...2))\r\n\r\n" + control(3).replacingOccurrences(of: "\n", with: "\r")
                + control(3, upToDate: true, closed: true)
            server.enqueue([ScriptedHTTPServer.sseHead] + body.map { String($0) })
            let events = try await client.events(of: .agent("a", "b@c d")).collect()
            #expect(events.map(\.eventIndex) == [0, 1, 2])
            #expect(events.allSatisfy { $0.event != nil }, "typed")
            #expect(server.requests.first == "GET /api/agents/a/b@c%20d?offset=-1&live=sse HTTP/1.1")
        }
    }

    @Test func tailAndNowSurviveACutBeforeTheFirstControlFrame() async throws {
        try await withServer { server, client in
            // tail: the reconnect asks for the tail again, not for the whole stream.
            server.enqueue([ScriptedHTTPServer.sseHead, "event: data\ndata:\(eventsJSON(8...9))\n\n"])
            server.enqueue([ScriptedHTTPServer.sseHead, "event: data\ndata:\(eventsJSON(8...9))\n\n", control(10, closed: true)])
            let tailed = try await client.events(of: .run("r2"), tail: 2).collect()
            #expect(tailed.map(\.eventIndex) == [8, 9])
            #expect(server.requests.suffix(2).allSatisfy { $0.contains("offset=-1&tail=2&live=sse") }, "\(server.requests)")

            // now: pinned with a catch-up read first, so the reconnect resumes from that position.
            server.enqueue([ScriptedHTTPServer.response("200 OK", ["stream-next-offset": offset(20), "stream-up-to-date": "true"], body: "[]")])
            server.enqueue([ScriptedHTTPServer.sseHead, "event: data\ndata:\(eventsJSON(20...20))\n\n"])
            server.enqueue([ScriptedHTTPServer.sseHead, "event: data\ndata:\(eventsJSON(20...21))\n\n", control(22, closed: true)])
            let fresh = try await client.events(of: .run("r3"), from: "now").collect()
            #expect(fresh.map(\.eventIndex) == [20, 21])
            #expect(server.requests.suffix(3) == [
                "GET /api/runs/r3?offset=now HTTP/1.1", "GET /api/runs/r3?offset=\(offset(20))&live=sse HTTP/1.1",
                "GET /api/runs/r3?offset=\(offset(20))&live=sse HTTP/1.1",
            ])
        }
    }

    @Test func rateLimitsAreWaitedOutAndOtherRefusalsEndTheStream() async throws {
        try await withServer { server, client in
            let refusal = #"{"error":{"type":"rate_limited","message":"Too many requests.","details":""}}"#
            server.enqueue([ScriptedHTTPServer.response("429 Too Many Requests", ["retry-after": "1"], body: refusal)])
            server.enqueue([
                ScriptedHTTPServer.response(
                    "200 OK", ["stream-next-offset": offset(1), "stream-up-to-date": "true", "stream-closed": "true"],
                    body: eventsJSON(0...0))
            ])
            let started = ContinuousClock.now
            let events = try await client.events(of: .run("r4"), live: .longPoll).collect()
            #expect(events.map(\.eventIndex) == [0])
            #expect(ContinuousClock.now - started >= .milliseconds(950), "Retry-After was honoured")

            let unknown = #"{"error":{"type":"run_not_found","message":"Run not found.","details":""}}"#
            server.enqueue([ScriptedHTTPServer.response("404 Not Found", body: unknown)])
            try await expectAPIError(.notFound, "run_not_found") { _ = try await client.events(of: .run("r5")).collect() }
            #expect(server.requests.count == 3, "a 404 is not retried")
        }
    }

    @Test func cancellingTheTaskEndsABlockedReadAtOnce() async throws {
        try await withServer { server, client in
            // A response that never sends its body: the read blocks until cancelled.
            server.enqueue([ScriptedHTTPServer.sseHead, ": heartbeat\n\n"])
            let reading = Task { try await client.events(of: .run("r6")).collect() }
            try await Task.sleep(for: .milliseconds(300))
            let cancelled = ContinuousClock.now
            reading.cancel()
            do {
                _ = try await reading.value
                Issue.record("a cancelled read returned normally")
            } catch {
                #expect(error is CancellationError || (error as? FlueClientError) != nil, "\(error)")
            }
            #expect(ContinuousClock.now - cancelled < .seconds(2))
        }
    }
}
