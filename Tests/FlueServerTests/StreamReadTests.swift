import AsyncHTTPClient
import FlueRuntime
@testable import FlueEngine
import FlueServer
import Foundation
import NIOCore
import OpenAPIRuntime
import Testing

@Suite struct StreamReadTests {
    @Test func catchUpReadsInBatchesWithOffsetsTailAndETags() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            let runId = try await f.startRun("logs", #"{"count":150}"#)
            _ = try await f.readToEnd(runId)  // 152 events: run_start, 150 logs, run_end

            let first = try await f.get("/runs/\(runId)")
            #expect(first.status == 200)
            #expect(first.json?.arrayValue?.count == 100)
            #expect(first.header("Stream-Next-Offset") == "0000000000000000_0000000000000100")
            #expect(first.header("Stream-Up-To-Date") == nil)
            #expect(first.header("Stream-Closed") == nil)
            #expect(first.header("Cache-Control") == "no-store")
            #expect(first.header("Cross-Origin-Resource-Policy") == "cross-origin")

            let second = try await f.get("/runs/\(runId)?offset=0000000000000000_0000000000000100")
            let events = try #require(second.json?.arrayValue)
            #expect(events.count == 52)
            #expect(events.first?["eventIndex"] == 100)
            #expect(second.header("Stream-Up-To-Date") == "true")
            #expect(second.header("Stream-Closed") == "true")
            let etag = try #require(second.header("ETag"))
            #expect(etag.hasSuffix(":c\""))

            let cached = try await f.get("/runs/\(runId)?offset=0000000000000000_0000000000000100", headers: [("If-None-Match", etag)])
            #expect(cached.status == 304)
            #expect(cached.body.isEmpty)
            #expect(cached.header("ETag") == etag)

            let short = try await f.get("/runs/\(runId)?offset=0_151")
            #expect(short.json?.arrayValue?.count == 1)
            #expect(short.header("Stream-Next-Offset") == "0000000000000000_0000000000000152")

            let tail = try await f.get("/runs/\(runId)?offset=-1&tail=3")
            #expect(tail.json?.arrayValue?.map { $0["eventIndex"] } == [149, 150, 151])

            let now = try await f.get("/runs/\(runId)?offset=now")
            #expect(now.json == [])
            #expect(now.header("ETag") == nil)
            #expect(now.header("Stream-Next-Offset") == "0000000000000000_0000000000000152")

            let head = try await f.request(.HEAD, "/runs/\(runId)")
            #expect(head.status == 200)
            #expect(head.body.isEmpty)
            #expect(head.header("Stream-Next-Offset") == "0000000000000000_0000000000000152")
            #expect(head.header("Stream-Up-To-Date") == "true")
            #expect(head.header("Stream-Closed") == "true")
            #expect(head.header("ETag")?.contains(":0000000000000000_0000000000000000:") == true)
            let missingHead = try await f.request(.HEAD, "/runs/run_missing")
            #expect(missingHead.status == 404)
            #expect(missingHead.body.isEmpty)
        }
    }

    @Test(arguments: [
        ("offset=-1&offset=now", "Duplicate offset parameters are not allowed."),
        ("tail=1&tail=2", "Duplicate tail parameters are not allowed."),
        ("tail=0", "Tail must be an integer greater than or equal to 1."),
        ("tail=abc", "Tail must be an integer greater than or equal to 1."),
        ("live=sse", "Offset is required for live mode."),
        ("offset=-1&live=websocket", "Invalid live mode. Use \"long-poll\" or \"sse\"."),
        ("offset=-1&live=", "Invalid live mode. Use \"long-poll\" or \"sse\"."),
        ("offset=banana", "Invalid offset format."),
        ("offset=1_2_3", "Invalid offset format."),
    ])
    func malformedReadsAreRejected(query: String, details: String) async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            let runId = try await f.startRun("logs", #"{"count":1}"#)
            let reply = try await f.get("/runs/\(runId)?\(query)")
            #expect(reply.status == 400)
            #expect(reply.errorType == "invalid_request")
            #expect(reply.json?["error"]?["details"]?.stringValue == details)
        }
    }

    @Test func longPollWakesOnAppendAndAnswersClosedStreamsAtOnce() async throws {
        let f = try await ServerFixture.start { $0.longPollTimeout = .seconds(10) }
        try await f.scoped {
            let runId = try await f.startRun("gated")
            // Wait for run_start and the first log, then poll from there.
            var offset = "-1"
            for _ in 0..<50 {
                let reply = try await f.get("/runs/\(runId)?offset=\(offset)")
                offset = reply.header("Stream-Next-Offset") ?? offset
                if offset == "0000000000000000_0000000000000002" { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(offset == "0000000000000000_0000000000000002")

            let started = ContinuousClock.now
            async let poll = f.get("/runs/\(runId)?offset=\(offset)&live=long-poll")
            try await Task.sleep(for: .milliseconds(200))
            f.gate.open()
            let woken = try await poll
            #expect(woken.status == 200)
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(woken.json?.arrayValue?.first?["message"] == "through the gate")
            #expect(woken.header("Stream-Cursor") != nil)
            #expect(woken.header("ETag") != nil)

            let events = try await f.readToEnd(runId)
            #expect(events.last?["result"] == "opened")
            let tail = try await f.request(.HEAD, "/runs/\(runId)")
            let end = try #require(tail.header("Stream-Next-Offset"))
            let closed = try await f.get("/runs/\(runId)?offset=\(end)&live=long-poll")
            #expect(closed.status == 204)
            #expect(closed.header("Stream-Closed") == "true")
            #expect(closed.header("Stream-Up-To-Date") == "true")
        }
    }

    @Test func longPollTimesOutWith204() async throws {
        let f = try await ServerFixture.start()  // 400 ms long-poll timeout
        try await f.scoped {
            let runId = try await f.startRun("gated")
            let reply = try await f.get("/runs/\(runId)?offset=now&live=long-poll")
            #expect(reply.status == 204)
            #expect(reply.header("Stream-Up-To-Date") == "true")
            #expect(reply.header("Stream-Closed") == nil)
            #expect(reply.header("Stream-Next-Offset") != nil)
            f.gate.open()
        }
    }

    @Test func sseDeliversDataAndControlFramesHeartbeatsAndEndsOnClose() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            let runId = try await f.startRun("gated")

            var request = HTTPClientRequest(url: f.baseURL + "/runs/\(runId)?offset=-1&live=sse")
            request.method = .GET
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(20))
            #expect(response.status == .ok)
            #expect(response.headers.first(name: "content-type") == "text/event-stream")
            #expect(response.headers.first(name: "cache-control") == "no-cache")
            #expect(response.headers.first(name: "Stream-Next-Offset") == nil)

            var raw = ""
            var dataEvents: [JSONValue] = []
            var controls: [JSONValue] = []
            let opener = Task {
                try await Task.sleep(for: .milliseconds(500))  // long enough for heartbeats
                f.gate.open()
            }
            let frames = response.body.map { buffer in
                ArraySlice(buffer.readableBytesView)
            }
            for try await chunk in frames {
                raw += String(decoding: chunk, as: UTF8.self)
            }
            _ = try await opener.value
            let (bytes, continuation) = AsyncStream<ArraySlice<UInt8>>.makeStream()
            continuation.yield(ArraySlice(raw.utf8))
            continuation.finish()
            for try await frame in bytes.asDecodedServerSentEvents() {
                let payload = try JSONValue(parsing: frame.data ?? "null")
                if frame.event == "data" { dataEvents += payload.arrayValue ?? [] }
                if frame.event == "control" { controls.append(payload) }
            }
            #expect(raw.contains(": heartbeat\n\n"))
            #expect(raw.contains("data:["))
            let types = dataEvents.compactMap { $0["type"]?.stringValue }
            #expect(types.first == "run_start")
            #expect(types.last == "run_end")
            #expect(dataEvents.map { $0["eventIndex"]?.intValue } == Array(0..<dataEvents.count).map(Optional.some))
            #expect(controls.contains { $0["upToDate"] == true && $0["streamCursor"] != nil })
            let last = try #require(controls.last)
            #expect(last["streamClosed"] == true)
            #expect(last["upToDate"] == true, "a closed stream at its tail is also up to date")
            #expect(last["streamCursor"] != nil)
            #expect(last["streamNextOffset"]?.stringValue == "0000000000000000_\(String(format: "%016d", dataEvents.count))")
        }
    }

    @Test func shutdownEndsLiveReadsCleanlyAndFinishesRunningWork() async throws {
        let f = try await ServerFixture.start { $0.longPollTimeout = .seconds(20) }
        let runId = try await f.startRun("gated")

        var request = HTTPClientRequest(url: f.baseURL + "/runs/\(runId)?offset=-1&live=sse")
        request.method = .GET
        let sse = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        async let poll = f.get("/runs/\(runId)?offset=now&live=long-poll", timeout: .seconds(30))
        let collector = Task {
            var raw = ""
            for try await buffer in sse.body { raw += String(buffer: buffer) }
            return raw
        }
        try await Task.sleep(for: .milliseconds(300))

        let started = ContinuousClock.now
        let drain = Task { await f.engine.drain() }
        let raw = try await collector.value  // the SSE response ends
        let polled = try await poll
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(polled.status == 204)
        let lastControl = try #require(raw.components(separatedBy: "event: control\ndata:").last)
        #expect(lastControl.contains("\"upToDate\":true"))

        // New runs are refused while draining; the running one finishes within the grace period.
        let refused = try await f.post("/workflows/logs", #"{"count":1}"#)
        #expect(refused.status == 503)
        #expect(refused.errorType == "service_unavailable")
        f.gate.open()
        await drain.value
        let meta = try await f.get("/runs/\(runId)?meta")
        #expect(meta.json?["status"] == "completed")
        await f.stop()
    }
}

extension ServerFixture {
    func get(_ path: String, timeout: TimeAmount) async throws -> Reply {
        try await request(.GET, path, timeout: timeout)
    }
}
