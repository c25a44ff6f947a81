import AsyncHTTPClient
import FlueRuntime
import Foundation
import NIOCore

extension FlueClient {
    /// Whose events to read.
    public enum StreamAddress: Sendable, Hashable {
        /// A workflow run's stream; it is closed after `run_end`.
        case run(String)
        /// An agent instance's stream (`name`, `id`); it stays open for the next prompts.
        case agent(String, String)

        var path: String {
            switch self {
            case .run(let runId): "/runs/\(PathSegment.encoded(runId))"
            case .agent(let name, let id): FlueClient.instancePath(name, id)
            }
        }
    }

    /// How to read: Durable Streams live modes.
    public enum LiveMode: Sendable, Hashable {
        /// Server-sent events on one long connection (reconnected when it drops).
        case sse
        /// Repeated long-polls.
        case longPoll
        /// What is there now, then the sequence ends.
        case catchUp
    }

    /// The events of a run or an agent instance from `offset` (`"-1"` the start, `"now"` the tail,
    /// or an offset the server returned), as an `AsyncSequence` of ``StreamedEvent``.
    ///
    /// - A dropped connection (or a `502`/`503`/`504`) is reconnected from the last offset the
    ///   server confirmed, after 0.1, 0.2, 0.4 … 5 s, at most `reconnects` times in a row; then
    ///   the sequence throws ``FlueClientError/streamInterrupted(offset:underlying:)``. An SSE
    ///   data frame is delivered only once the control frame that follows it confirms its end
    ///   offset, so a reconnect neither skips nor repeats an event.
    /// - It ends when the stream is closed (a run after `run_end`), or, for ``LiveMode/catchUp``,
    ///   once caught up. An agent instance's stream never closes: stop iterating (or cancel the
    ///   task) when you have what you need.
    /// - `tail` (with `"-1"`): only the last `tail` events that exist now, then on from there.
    /// - Other answers (`404` before an instance's first prompt, `401`) throw ``FlueClientError/api(_:)``.
    public func events(
        of stream: StreamAddress, from offset: String = "-1", tail: Int? = nil, live: LiveMode = .sse, reconnects: Int = 10
    ) -> FlueEventStream {
        FlueEventStream(client: self, address: stream, offset: offset, tail: tail, live: live, reconnects: reconnects)
    }
}

/// One event read from a stream.
public struct StreamedEvent: Sendable, Hashable {
    /// The event as the server sent it.
    public let json: JSONValue
    /// The typed event; `nil` for a type this client does not know (a newer server).
    public let event: FlueEvent?
    /// The offset just after the batch that carried this event: reading from it continues after
    /// that batch. It is an exact checkpoint only on the batch's last event (``isLastInBatch``).
    public let batchOffset: String
    /// Whether this is the last event of its batch: once it is handled, `batchOffset` is where to resume.
    public let isLastInBatch: Bool

    public var type: String { json["type"]?.stringValue ?? "" }
    public var eventIndex: Int? { json["eventIndex"]?.intValue }

    init(json: JSONValue, batchOffset: String, isLastInBatch: Bool) {
        self.json = json
        self.batchOffset = batchOffset
        self.isLastInBatch = isLastInBatch
        self.event = try? JSONDecoder.flue.decode(FlueEvent.self, from: json.jsonData())
    }

    /// A batch's events, the last one marked.
    static func batch(_ events: [JSONValue], offset: String) -> [StreamedEvent] {
        events.enumerated().map { StreamedEvent(json: $1, batchOffset: offset, isLastInBatch: $0 == events.count - 1) }
    }
}

/// The events of one stream; see ``FlueClient/events(of:from:tail:live:reconnects:)``.
public struct FlueEventStream: AsyncSequence, Sendable {
    public typealias Element = StreamedEvent
    let client: FlueClient
    let address: FlueClient.StreamAddress
    let offset: String
    let tail: Int?
    let live: FlueClient.LiveMode
    let reconnects: Int

    public func makeAsyncIterator() -> Iterator {
        Iterator(reader: StreamReader(client: client, address: address, offset: offset, tail: tail, live: live, reconnects: reconnects))
    }

    public struct Iterator: AsyncIteratorProtocol {
        let reader: StreamReader

        /// The next event, `nil` at the end. Throws ``FlueClientError`` or `CancellationError`;
        /// after a throw the sequence is over.
        public mutating func next() async throws -> StreamedEvent? {
            try await reader.next()
        }

        /// Where to resume to read exactly what this iterator has not returned yet: the end of
        /// the last batch whose events were all returned (the start offset before any).
        public var offset: String { reader.delivered }
    }
}

/// The reading state behind one iterator. Used by one task at a time (an iterator is not shared).
final class StreamReader {
    let client: FlueClient
    let address: FlueClient.StreamAddress
    let live: FlueClient.LiveMode
    let reconnects: Int
    /// Where the next read starts: the end of the last batch received.
    private(set) var offset: String
    /// The end of the last batch whose events were all returned.
    private(set) var delivered: String
    private var tail: Int?
    private var ready: [StreamedEvent] = []
    private var finished = false
    private var failures = 0
    private var sse: SSEConnection?
    /// When the last long-poll was sent (a 204 that comes back at once is not polled again at once).
    private var lastPoll: ContinuousClock.Instant?
    /// Whether the server answered a read yet: until it has, a server that cannot be reached is
    /// a wrong address or a server that is down, reported at once rather than retried.
    private var connected = false

    init(client: FlueClient, address: FlueClient.StreamAddress, offset: String, tail: Int?, live: FlueClient.LiveMode, reconnects: Int) {
        self.client = client
        self.address = address
        self.offset = offset
        self.delivered = offset
        self.tail = tail
        self.live = live
        self.reconnects = reconnects
    }

    func next() async throws -> StreamedEvent? {
        while true {
            if !ready.isEmpty {
                let event = ready.removeFirst()
                if event.isLastInBatch { delivered = event.batchOffset }
                return event
            }
            delivered = offset
            if finished { return nil }
            do {
                try Task.checkCancellation()
                // `now` names a position that moves: pin it with one catch-up read first, so a
                // reconnect resumes from where reading began, not from a later "now".
                if offset == "now" { try await readOnce(live: nil) } else {
                    switch live {
                    case .sse: try await readSSE()
                    case .longPoll: try await readOnce(live: "long-poll")
                    case .catchUp: try await readOnce(live: nil)
                    }
                }
            } catch FlueClientError.transport(let message) where !connected {
                end()
                throw FlueClientError.transport(message)
            } catch let error where Self.retryDelay(error, failures: failures + 1) != nil && failures < reconnects {
                sse = nil
                failures += 1
                try await Task.sleep(for: Self.retryDelay(error, failures: failures)!)
            } catch let error where Self.retryDelay(error, failures: failures + 1) != nil {
                end()
                throw FlueClientError.streamInterrupted(offset: offset, underlying: "\(error)")
            } catch {
                end()
                throw error
            }
        }
    }

    private func end() {
        finished = true
        sse = nil
        ready.removeAll()
    }

    /// How long to wait before retrying after `error` (the `failures`-th in a row), or `nil`
    /// when it is not worth retrying: transport errors and `502`/`504` after 0.1 s doubling to
    /// 5 s; `429` and `503` after their `Retry-After` (at most 30 s).
    static func retryDelay(_ error: any Error, failures: Int) -> Duration? {
        let backoff = Duration.milliseconds(min(5_000, 100 << min(max(failures - 1, 0), 6)))
        switch error as? FlueClientError {
        case .transport?: return backoff
        case .api(let api)? where [502, 504].contains(api.status): return backoff
        case .api(let api)? where [429, 503].contains(api.status):
            return api.retryAfter.map { .seconds(min(max($0, 0), 30)) } ?? backoff
        default: return nil
        }
    }

    private func query(live value: String?) -> [(String, String)] {
        var query = [("offset", offset)]
        if let tail { query.append(("tail", String(tail))) }
        if let value { query.append(("live", value)) }
        return query
    }

    /// One catch-up (`live` nil) or long-poll read.
    private func readOnce(live value: String?) async throws {
        if value != nil, let lastPoll, ContinuousClock.now - lastPoll < .seconds(1) {
            // The previous poll came back empty at once (a server draining for shutdown answers
            // 204 without waiting): do not hammer it.
            try await Task.sleep(until: lastPoll + .seconds(1))
        }
        let request = try await client.request(.GET, address.path, query: query(live: value))
        lastPoll = value == nil ? nil : .now
        // A long-poll answers within the server's timeout (30 s by default): no read timeout.
        let (status, headers, body) = try await client.send(
            request, timeout: value == nil ? client.timeout : .seconds(600), waits: value != nil)
        guard status == 200 || status == 204 else { throw FlueClient.apiError(status: status, headers: headers, body: body) }
        connected = true
        guard let next = headers.first(name: "stream-next-offset") else {
            throw FlueClientError.invalidResponse("a stream read answered \(status) without Stream-Next-Offset")
        }
        if status == 200 {
            guard case .array(let events)? = try? JSONValue(parsing: body) else {
                throw FlueClientError.invalidResponse("a stream read answered 200 without a JSON array")
            }
            ready.append(contentsOf: StreamedEvent.batch(events, offset: next))
            if !events.isEmpty {
                failures = 0
                lastPoll = nil
            }
        }
        offset = next
        tail = nil
        let upToDate = headers.first(name: "stream-up-to-date") == "true"
        if headers.first(name: "stream-closed") == "true" && (upToDate || status == 204) { finished = true }
        if live == .catchUp && (upToDate || status == 204) { finished = true }
    }

    /// Reads SSE frames until a control frame (or the connection's end).
    private func readSSE() async throws {
        if sse == nil {
            let request = try await client.request(.GET, address.path, query: query(live: "sse"))
            let response: HTTPClientResponse
            do {
                // No deadline: the read lasts as long as the stream. The client's read timeout
                // (60 s without a byte; heartbeats come every 15 s) notices a dead connection.
                response = try await client.httpClient.execute(request, deadline: .distantFuture)
            } catch {
                throw FlueClient.transportError(error, request.url)
            }
            guard response.status == .ok else {
                let body = (try? await response.body.collect(upTo: 1 << 20)).map { Data($0.readableBytesView) } ?? Data()
                throw FlueClient.apiError(status: Int(response.status.code), headers: response.headers, body: body)
            }
            sse = SSEConnection(body: response.body.makeAsyncIterator())
            connected = true
        }
        guard let connection = sse else { return }
        while true {
            let frame: SSEConnection.Frame?
            do {
                frame = try await connection.nextFrame()
            } catch {
                throw FlueClient.transportError(error, "the event stream broke")
            }
            guard let frame else {
                // The server ended the response (shutting down): reconnect from the confirmed offset.
                throw FlueClientError.transport("the server ended the event stream")
            }
            switch frame.event {
            case "data":
                guard case .array(let events)? = try? JSONValue(parsing: Data(frame.data.utf8)) else {
                    throw FlueClientError.invalidResponse("an SSE data frame is not a JSON array")
                }
                connection.pending.append(contentsOf: events)
            case "control":
                guard let control = try? JSONValue(parsing: Data(frame.data.utf8)),
                    let next = control["streamNextOffset"]?.stringValue
                else { throw FlueClientError.invalidResponse("an SSE control frame has no streamNextOffset") }
                ready.append(contentsOf: StreamedEvent.batch(connection.pending, offset: next))
                if !connection.pending.isEmpty { failures = 0 }
                connection.pending.removeAll()
                offset = next
                tail = nil
                if control["streamClosed"] == .bool(true) {
                    finished = true
                    sse = nil
                }
                return
            default:
                continue
            }
        }
    }
}

/// An open SSE response: frames parsed from its bytes (WHATWG "Server-sent events" §9.2.6:
/// `event:` and `data:` fields, one leading space dropped, `data` lines joined by newlines, a
/// blank line ends a frame, lines starting with `:` are comments).
final class SSEConnection {
    struct Frame {
        var event: String
        var data: String
    }

    private var body: HTTPClientResponse.Body.AsyncIterator
    private var buffer: [UInt8] = []
    /// How much of `buffer` is known to hold no line end.
    private var scanned = 0
    /// Events of data frames whose control frame has not come yet.
    var pending: [JSONValue] = []

    init(body: HTTPClientResponse.Body.AsyncIterator) {
        self.body = body
    }

    func nextFrame() async throws -> Frame? {
        var event = ""
        var data: [String] = []
        var hasField = false
        while true {
            guard let line = try await nextLine() else { return nil }
            if line.isEmpty {
                if hasField { return Frame(event: event.isEmpty ? "message" : event, data: data.joined(separator: "\n")) }
                continue
            }
            if line.hasPrefix(":") { continue }
            let name: Substring
            var value: Substring
            if let colon = line.firstIndex(of: ":") {
                name = line[..<colon]
                value = line[line.index(after: colon)...]
                if value.hasPrefix(" ") { value = value.dropFirst() }
            } else {
                name = Substring(line)
                value = ""
            }
            switch name {
            case "event":
                event = String(value)
                hasField = true
            case "data":
                data.append(String(value))
                hasField = true
            default:
                continue
            }
        }
    }

    /// The next line without its terminator (`\n`, `\r\n` or `\r`), or `nil` at the end.
    private func nextLine() async throws -> String? {
        while true {
            if let end = buffer[scanned...].firstIndex(where: { $0 == 0x0A || $0 == 0x0D }) {
                // A `\r` as the last byte may be half of `\r\n`: wait for the next chunk.
                if buffer[end] == 0x0D && end == buffer.count - 1 {
                    scanned = end
                    guard let chunk = try await body.next() else {
                        let line = String(decoding: buffer[..<end], as: UTF8.self)
                        buffer.removeAll()
                        scanned = 0
                        return line
                    }
                    buffer.append(contentsOf: chunk.readableBytesView)
                    continue
                }
                let line = String(decoding: buffer[..<end], as: UTF8.self)
                let skip = buffer[end] == 0x0D && buffer[end + 1] == 0x0A ? 2 : 1
                buffer.removeFirst(end + skip)
                scanned = 0
                return line
            }
            scanned = buffer.count
            guard let chunk = try await body.next() else {
                guard !buffer.isEmpty else { return nil }
                let line = String(decoding: buffer, as: UTF8.self)
                buffer.removeAll()
                scanned = 0
                return line
            }
            buffer.append(contentsOf: chunk.readableBytesView)
        }
    }
}
