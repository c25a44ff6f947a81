import FlueRuntime
@testable import FlueEngine
@testable import FlueServer
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Issue 20, items 2–4: request timeouts, connection and live-read limits, and live reads whose
/// client left. Every exchange is a raw socket, so no client library pools or retries connections
/// behind the test's back.
@Suite struct ConnectionLimitTests {
    /// What a raw connection received, and whether the server closed it (EOF or reset) before
    /// the read timeout.
    struct Received {
        var text: String
        var closedByServer: Bool
    }

    /// Reads until the server closes the connection or the socket's read timeout passes.
    static func readUntilClosed(_ fd: Int32) async throws -> Received {
        try await ServerFixture.offPool { readUntilClosedBlocking(fd) }
    }

    /// Reads for `duration` (or until the server closes the connection).
    static func readFor(_ fd: Int32, _ duration: Duration) async throws -> Received {
        try await readFor(fd, atLeast: duration, atMost: duration) { _ in true }
    }

    /// Reads for at least `atLeast`, then until `enough` holds for what arrived or `atMost` has
    /// passed: a test that needs several timed frames still gets them on a starved machine.
    static func readFor(
        _ fd: Int32, atLeast: Duration, atMost: Duration, until enough: @escaping @Sendable (String) -> Bool
    ) async throws -> Received {
        try await ServerFixture.offPool {
            let start = ContinuousClock.now
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while ContinuousClock.now < start + atMost {
                if ContinuousClock.now >= start + atLeast, enough(String(decoding: received, as: UTF8.self)) { break }
                let count = read(fd, &buffer, buffer.count)
                if count > 0 {
                    received += buffer[0..<count]
                } else if count == 0 || errno == ECONNRESET {
                    return Received(text: String(decoding: received, as: UTF8.self), closedByServer: true)
                }
            }
            return Received(text: String(decoding: received, as: UTF8.self), closedByServer: false)
        }
    }

    /// One read: what arrived first (empty on EOF or timeout).
    static func readOnce(_ fd: Int32) async throws -> String {
        try await ServerFixture.offPool {
            var buffer = [UInt8](repeating: 0, count: 65536)
            let count = read(fd, &buffer, buffer.count)
            return String(decoding: buffer[0..<max(0, count)], as: UTF8.self)
        }
    }

    private static func readUntilClosedBlocking(_ fd: Int32) -> Received {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count > 0 {
                received += buffer[0..<count]
                continue
            }
            let closed = count == 0 || errno == ECONNRESET
            return Received(text: String(decoding: received, as: UTF8.self), closedByServer: closed)
        }
    }

    static func sendText(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        #expect(send(fd, bytes, bytes.count, 0) == bytes.count)
    }

    /// Polls `condition` every 20 ms for up to `timeout`; returns whether it held.
    static func eventually(_ timeout: Duration = .seconds(5), _ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }

    /// The server closes `fd` (well before its 10 s read timeout) without writing anything.
    static func expectClosedWithoutAnswer(_ fd: Int32, _ why: Comment) async throws {
        let started = ContinuousClock.now
        let received = try await readUntilClosed(fd)
        #expect(received.closedByServer, "closed by the server, not by the 10 s read timeout")
        #expect(received.text.isEmpty, why)
        #expect(ContinuousClock.now - started < .seconds(8))
    }

    static func body(of response: String) -> JSONValue? {
        guard let range = response.range(of: "\r\n\r\n") else { return nil }
        return try? JSONValue(parsing: Data(response[range.upperBound...].utf8))
    }

    // MARK: timeouts

    @Test func aConnectionThatSendsNothingIsClosedAfterTheHeadTimeout() async throws {
        let f = try await ServerFixture.start { $0.requestHeadTimeout = .milliseconds(300) }
        try await f.scoped {
            let (fd, _) = try ServerFixture.connectSocket(port: f.port, timeout: .seconds(10))
            defer { close(fd) }
            try await Self.expectClosedWithoutAnswer(fd, "nothing was asked, nothing is answered")
        }
    }

    @Test func aPartialRequestHeadIsAnswered408AndClosed() async throws {
        let f = try await ServerFixture.start { $0.requestHeadTimeout = .milliseconds(300) }
        try await f.scoped {
            let (fd, _) = try ServerFixture.connectSocket(port: f.port, timeout: .seconds(10))
            defer { close(fd) }
            Self.sendText(fd, "GET /health HTTP/1.1\r\nHost: x\r\n")
            let received = try await Self.readUntilClosed(fd)
            #expect(received.closedByServer)
            #expect(received.text.hasPrefix("HTTP/1.1 408 "), "\(received.text)")
            #expect(received.text.lowercased().contains("connection: close"))
            let error = Self.body(of: received.text)?["error"]
            #expect(error?["type"]?.stringValue == "request_timeout")
            #expect(error?["details"]?.stringValue?.contains("REQUEST_HEAD_TIMEOUT_SECONDS") == true)
        }
    }

    @Test func theHeadTimeoutOfAKeepAliveRequestCountsFromItsFirstByte() async throws {
        let f = try await ServerFixture.start {
            $0.requestHeadTimeout = .milliseconds(400)
            $0.keepAliveTimeout = .seconds(5)
        }
        try await f.scoped {
            let (fd, _) = try ServerFixture.connectSocket(port: f.port, timeout: .seconds(10))
            defer { close(fd) }
            Self.sendText(fd, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try await Self.readOnce(fd).hasPrefix("HTTP/1.1 200"))
            // Idle for longer than the head timeout, within the keep-alive timeout: still open.
            try await Task.sleep(for: .milliseconds(900))
            Self.sendText(fd, "GET /health HTTP/1.1\r\nHost: x\r\n")  // the head never ends
            let received = try await Self.readUntilClosed(fd)
            #expect(received.text.hasPrefix("HTTP/1.1 408 "), "\(received.text)")
            #expect(received.closedByServer)
        }
    }

    @Test func anIdleKeepAliveConnectionIsClosedAfterTheKeepAliveTimeout() async throws {
        let f = try await ServerFixture.start {
            $0.keepAliveTimeout = .seconds(2)
            $0.requestHeadTimeout = .seconds(30)
        }
        try await f.scoped {
            let (fd, _) = try ServerFixture.connectSocket(port: f.port, timeout: .seconds(10))
            defer { close(fd) }
            // Used again within the keep-alive timeout: served on the same connection.
            for _ in 0..<2 {
                Self.sendText(fd, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await Self.readOnce(fd).hasPrefix("HTTP/1.1 200"))
                try await Task.sleep(for: .milliseconds(200))
            }
            try await Self.expectClosedWithoutAnswer(fd, "an idle connection is closed silently")
        }
    }

    @Test func aBodyThatStopsArrivingIsClosedAfterTheBodyTimeout() async throws {
        let f = try await ServerFixture.start { $0.requestBodyTimeout = .milliseconds(400) }
        try await f.scoped {
            let (fd, _) = try ServerFixture.connectSocket(port: f.port, timeout: .seconds(10))
            defer { close(fd) }
            Self.sendText(
                fd, "POST /workflows/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"count\":")
            let received = try await Self.readUntilClosed(fd)
            #expect(received.closedByServer, "closed by the server, not by the 10 s read timeout")
            #expect(!received.text.contains("HTTP/1.1 202"), "the truncated request was not run: \(received.text)")
            let runs = try await f.engine.stores.runs.listRuns(status: nil, workflowName: "logs", limit: 10, cursor: nil)
            #expect(runs.runs.isEmpty)
        }
    }

    @Test func aBodyThatKeepsArrivingSlowlyIsNotCut() async throws {
        let f = try await ServerFixture.start { $0.requestBodyTimeout = .milliseconds(2500) }
        try await f.scoped {
            let (fd, _) = try ServerFixture.connectSocket(port: f.port, timeout: .seconds(10))
            defer { close(fd) }
            let body = "{\"count\": 3, \"note\": \"" + String(repeating: "x", count: 20) + "\"}"
            Self.sendText(
                fd, "POST /workflows/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n")
            // 4 s in all, more than the body timeout, but never a pause as long as it (sent from a
            // Dispatch thread: a sleep on the cooperative pool can overrun on a busy machine).
            let sent = try await ServerFixture.offPool {
                body.utf8.allSatisfy { byte in
                    usleep(100_000)
                    return send(fd, [byte], 1, 0) == 1
                }
            }
            #expect(sent)
            let received = try await Self.readUntilClosed(fd)
            #expect(received.text.hasPrefix("HTTP/1.1 202 "), "\(received.text)")
        }
    }

    @Test(arguments: ["workflow", "agent"])
    func aWaitForResultWhoseClientLeftEndsAtOnce(kind: String) async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            let request: String
            if kind == "workflow" {
                request = "POST /workflows/gated?wait=result HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
            } else {
                await f.model.enqueue(.toolCall("work", ["label": "long", "sleepMs": 20000]))
                let body = "{\"message\":\"work\"}"
                request = "POST /agents/assistant/leaver?wait=result HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
            }
            let (fd, _) = try ServerFixture.connectSocket(port: f.port, timeout: .seconds(5))
            Self.sendText(fd, request)
            try await Task.sleep(for: .milliseconds(300))
            #expect(f.server.openConnections.current == 1, "the request is waiting for its result")
            close(fd)
            // The wait ends (the run or submission goes on) and the server closes its side at once,
            // well before the gate opens or the 20 s tool call returns.
            #expect(try await Self.eventually(.seconds(5)) { f.server.openConnections.current == 0 }, "connection released")
            f.gate.open()
        }
    }

    @Test func liveReadsOutlastTheHeadAndKeepAliveTimeouts() async throws {
        let f = try await ServerFixture.start {
            $0.requestHeadTimeout = .milliseconds(200)
            $0.keepAliveTimeout = .milliseconds(200)
            $0.sseHeartbeatInterval = .milliseconds(150)
        }
        try await f.scoped {
            let runId = try await f.startRun("gated")
            let (fd, _) = try ServerFixture.connectSocket(port: f.port, timeout: .seconds(1))
            defer { close(fd) }
            Self.sendText(fd, "GET /runs/\(runId)?offset=-1&live=sse HTTP/1.1\r\nHost: x\r\n\r\n")
            // Two seconds of a caught-up SSE read (ten times the timeouts), kept open by heartbeats;
            // then on until three heartbeats arrived (a loaded CI machine may delay them).
            let received = try await Self.readFor(fd, atLeast: .seconds(2), atMost: .seconds(20)) {
                $0.components(separatedBy: ": heartbeat").count > 3
            }
            #expect(!received.closedByServer, "the server kept the live read open")
            #expect(received.text.hasPrefix("HTTP/1.1 200"))
            #expect(received.text.components(separatedBy: ": heartbeat").count > 2, "heartbeats kept coming")
            f.gate.open()
        }
    }

    // MARK: limits

    @Test func connectionsBeyondTheLimitAre503ButTheHealthCheckIsServed() async throws {
        let f = try await ServerFixture.start {
            $0.maxConnections = 2
            $0.overloadRetryAfterSeconds = 3
            $0.requestHeadTimeout = .seconds(30)
        }
        try await f.scoped {
            let first = try ServerFixture.connectSocket(port: f.port, timeout: .seconds(5)).fd
            let second = try ServerFixture.connectSocket(port: f.port, timeout: .seconds(5)).fd
            #expect(try await Self.eventually { f.server.openConnections.current == 2 })

            let refused = try await f.raw("GET /runs/nope HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(refused.hasPrefix("HTTP/1.1 503 "), "\(refused)")
            #expect(refused.lowercased().contains("retry-after: 3"))
            #expect(refused.lowercased().contains("connection: close"))
            let error = Self.body(of: refused)?["error"]
            #expect(error?["type"]?.stringValue == "service_unavailable")
            #expect(error?["meta"]?["limit"]?.stringValue == "connections")
            #expect(error?["meta"]?["max"]?.intValue == 2)
            #expect(error?["details"]?.stringValue?.contains("MAX_CONNECTIONS") == true)

            let head = try await f.raw("HEAD /runs/nope HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(head.hasPrefix("HTTP/1.1 503 "), "\(head)")
            #expect(head.hasSuffix("\r\n\r\n"), "a refused HEAD has no body: \(head)")

            // Anything pipelined behind the health check on an overflow connection is dropped.
            let health = try await f.raw("GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /runs/nope HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(health.hasPrefix("HTTP/1.1 200 "), "the health check passes under overload: \(health)")
            #expect(health.lowercased().contains("connection: close"))
            #expect(health.components(separatedBy: "HTTP/1.1 ").count == 2, "one response only: \(health)")

            close(first)
            close(second)
            #expect(try await Self.eventually { f.server.openConnections.current == 0 })
            let served = try await f.raw("GET /runs/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(served.hasPrefix("HTTP/1.1 404 "), "below the limit again: \(served)")
        }
    }

    /// Opens a live read of `path` on a new connection and waits until the server counts it.
    static func openLiveRead(_ f: ServerFixture, _ path: String, mode: String) async throws -> Int32 {
        let before = f.server.liveReads.count()
        let (fd, _) = try ServerFixture.connectSocket(port: f.port, timeout: .seconds(5))
        sendText(fd, "GET \(path)?offset=now&live=\(mode) HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try await eventually { f.server.liveReads.count() == before + 1 }, "\(path) is being read live")
        return fd
    }

    @Test func liveReadsBeyondTheTotalAndPerStreamLimitsAre503() async throws {
        let f = try await ServerFixture.start {
            $0.maxLiveReads = 2
            $0.maxLiveReadsPerStream = 1
            $0.longPollTimeout = .seconds(20)
        }
        try await f.scoped {
            let a = try await f.startRun("gated")
            let b = try await f.startRun("gated")
            let c = try await f.startRun("gated")
            let sseOnA = try await Self.openLiveRead(f, "/runs/\(a)", mode: "sse")
            defer { close(sseOnA) }

            let sameStream = try await f.raw("GET /runs/\(a)?offset=-1&live=long-poll HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(sameStream.hasPrefix("HTTP/1.1 503 "), "\(sameStream)")
            #expect(sameStream.lowercased().contains("retry-after: 2"))
            #expect(Self.body(of: sameStream)?["error"]?["meta"]?["limit"]?.stringValue == "live_reads_per_stream")

            let pollOnB = try await Self.openLiveRead(f, "/runs/\(b)", mode: "long-poll")
            defer { close(pollOnB) }
            let overTotal = try await f.raw("GET /runs/\(c)?offset=-1&live=sse HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(overTotal.hasPrefix("HTTP/1.1 503 "), "\(overTotal)")
            #expect(Self.body(of: overTotal)?["error"]?["meta"]?["limit"]?.stringValue == "live_reads")
            #expect(Self.body(of: overTotal)?["error"]?["details"]?.stringValue?.contains("MAX_LIVE_READS") == true)

            // Catch-up reads are not live reads: still served.
            let catchUp = try await f.raw("GET /runs/\(c)?offset=-1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(catchUp.hasPrefix("HTTP/1.1 200 "), "\(catchUp)")
            f.gate.open()
        }
    }

    @Test(arguments: ["long-poll", "sse"])
    func aLiveReadWhoseClientLeftFreesItsSlotAtOnce(mode: String) async throws {
        let f = try await ServerFixture.start {
            $0.maxLiveReadsPerStream = 1
            $0.longPollTimeout = .seconds(30)
            $0.sseHeartbeatInterval = .seconds(30)
        }
        try await f.scoped {
            let runId = try await f.startRun("gated")
            let path = "runs/\(runId)"
            let fd = try await Self.openLiveRead(f, "/\(path)", mode: mode)
            #expect(f.server.liveReads.count(of: path) == 1)
            close(fd)
            // Well before the 30 s poll timeout or heartbeat, the slot is free again...
            #expect(try await Self.eventually(.seconds(5)) { f.server.liveReads.count(of: path) == 0 }, "slot released")
            // ...and the next reader of the stream gets it.
            let next = try await Self.openLiveRead(f, "/\(path)", mode: mode)
            close(next)
            f.gate.open()
        }
    }
}
