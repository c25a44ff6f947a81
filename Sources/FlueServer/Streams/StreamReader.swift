import FlueEngine
import FluePersistence
import FlueRuntime
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Serves Durable Streams reads of one stream path: catch-up, long-poll, SSE and HEAD.
struct StreamReader: Sendable {
    var store: any EventStreamStore
    var path: String
    /// The 404 to answer when the stream does not exist.
    var notFound: FlueHTTPError
    var configuration: FlueConfiguration
    var shutdown: ShutdownLatch
    var liveReads: LiveReadLimiter

    static let batchSize = 100

    func head() async throws -> Response {
        guard let meta = try await store.meta(path) else { throw notFound }
        var headers = HTTPFields.flueSecurity
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        headers[.streamNextOffset] = meta.tail.description
        headers[.streamUpToDate] = "true"
        if meta.closed { headers[.streamClosed] = "true" }
        headers[.eTag] = StreamHeaders.etag(path: path, start: .start, end: meta.tail, closedAndCaughtUp: meta.closed)
        return Response(status: .ok, headers: headers)
    }

    func get(_ request: Request) async throws -> Response {
        let query = try StreamQuery(request.uri.queryParameters)
        guard let meta = try await store.meta(path) else { throw notFound }
        let start: StreamOffset
        switch query.offset {
        case .now: start = meta.tail
        case .after(let offset):
            // Offsets only ever come from this stream, whose tail never moves back: one past the
            // tail was never issued (a typo, or another stream's) and would wait forever.
            guard offset <= meta.tail else {
                throw FlueHTTPError.invalidRequest(
                    "Offset \(offset) is beyond the end of this stream (its tail is \(meta.tail)). "
                        + "Use an offset this stream returned, -1 or now.")
            }
            start = offset
        case .start:
            if let tail = query.tail {
                let (from, overflow) = meta.tail.sequence.subtractingReportingOverflow(tail)
                start = StreamOffset(sequence: overflow ? -1 : max(-1, from))
            } else {
                start = .start
            }
        }
        switch query.live {
        case nil:
            return try await catchUp(request, start: start, isNow: query.offset == .now, meta: meta)
        case .longPoll:
            let slot = try liveReads.acquire(path)
            defer { slot.release() }
            return try await longPoll(start: start, clientCursor: query.cursor)
        case .sse:
            return sse(start: start, clientCursor: query.cursor, slot: try liveReads.acquire(path))
        }
    }

    // MARK: catch-up

    private func catchUp(_ request: Request, start: StreamOffset, isNow: Bool, meta: StreamMeta) async throws -> Response {
        let result: StreamReadResult
        if isNow {
            result = StreamReadResult(events: [], nextOffset: meta.tail, upToDate: true, closed: meta.closed)
        } else {
            result = try await readBatch(after: start)
        }
        var headers = StreamHeaders.read(result)
        if !isNow {
            let etag = StreamHeaders.etag(
                path: path, start: start, end: result.nextOffset, closedAndCaughtUp: result.closed && result.upToDate)
            if request.headers[.ifNoneMatch] == etag {
                var notModified = HTTPFields.flueSecurity
                notModified[.eTag] = etag
                return Response(status: .notModified, headers: notModified)
            }
            headers[.eTag] = etag
        }
        return Response(status: .ok, headers: headers, body: body(result.events))
    }

    // MARK: long-poll

    private func longPoll(start: StreamOffset, clientCursor: String?) async throws -> Response {
        let changes = store.subscribe(path)
        var result = try await readBatch(after: start)
        if result.events.isEmpty && !(result.closed && result.upToDate) && !shutdown.isSet {
            let deadline = ContinuousClock.now + configuration.longPollTimeout
            try await withLiveWakes(
                changes: changes, shutdown: shutdown.signal(), clientGone: ClientConnection.current?.goneSignal(),
                tick: configuration.longPollTimeout
            ) { wakes in
                for await wake in wakes {
                    // Nobody to answer: stop now, which frees the live-read slot and the subscription.
                    if case .clientGone = wake { return }
                    if case .changed = wake {
                        result = try await readBatch(after: start)
                        if !result.events.isEmpty || result.closed { return }
                        continue
                    }
                    if case .tick = wake, ContinuousClock.now < deadline { continue }
                    // Timeout or shutdown: one last re-read so a missed wake-up never costs a poll.
                    result = try await readBatch(after: start)
                    return
                }
            }
        }
        let cursor = StreamHeaders.cursor(clientCursor: clientCursor)
        guard !result.events.isEmpty else {
            var headers = HTTPFields.flueSecurity
            headers[.streamNextOffset] = start.description
            headers[.streamUpToDate] = "true"
            headers[.streamCursor] = cursor
            if result.closed { headers[.streamClosed] = "true" }
            return Response(status: .noContent, headers: headers)
        }
        var headers = StreamHeaders.read(result)
        headers[.streamCursor] = cursor
        headers[.eTag] = StreamHeaders.etag(
            path: path, start: start, end: result.nextOffset, closedAndCaughtUp: result.closed && result.upToDate)
        return Response(status: .ok, headers: headers, body: body(result.events))
    }

    // MARK: SSE

    /// `slot` is this read's live-read slot, given back when the body ends (or, if the body never
    /// runs, when the response is dropped).
    private func sse(start: StreamOffset, clientCursor: String?, slot: LiveReadSlot) -> Response {
        var headers = HTTPFields.flueSecurity
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let store = self.store
        let path = self.path
        let configuration = self.configuration
        let shutdown = self.shutdown
        let changes = store.subscribe(path)
        let client = ClientConnection.current
        let clientGone = client?.goneSignal()
        let sliceBytes = batchBytes
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                defer { slot.release() }
                var offset = start
                var lastControl = ContinuousClock.now
                // The client's cursor advances once; later frames never go below what was sent.
                var cursor = StreamHeaders.cursorValue(clientCursor: clientCursor)
                func control(upToDate: Bool, closed: Bool = false) -> ByteBuffer {
                    cursor = max(cursor, StreamHeaders.currentInterval())
                    var object: [String: JSONValue] = [
                        "streamNextOffset": .string(offset.description), "streamCursor": .string(String(cursor)),
                    ]
                    if upToDate { object["upToDate"] = true }
                    if closed { object["streamClosed"] = true }
                    return Self.control(object)
                }
                try await withLiveWakes(
                    changes: changes, shutdown: shutdown.signal(), clientGone: clientGone,
                    tick: configuration.sseHeartbeatInterval
                ) { wakes in
                    var iterator = wakes.makeAsyncIterator()
                    while true {
                        // Also checked here, not only as wake-ups: a burst of changes can push
                        // those out of the wake-up buffer while this loop catches up.
                        if client?.isGone == true { return }
                        if shutdown.isSet {
                            try await writer.write(control(upToDate: false))
                            return
                        }
                        // Read the next batch only once the connection took the last one: a reader
                        // that stops reading then holds what is in flight, not the rest of the stream.
                        await client?.writeBarrier()
                        if client?.isGone == true { return }
                        let result = try await readBatch(after: offset)
                        if !result.events.isEmpty {
                            try await Self.write(
                                result.events, prefix: "event: data\ndata:", suffix: "\n\n", sliceBytes: sliceBytes,
                                client: client, to: &writer)
                        }
                        offset = result.nextOffset
                        lastControl = ContinuousClock.now
                        if result.closed && result.upToDate {
                            try await writer.write(control(upToDate: true, closed: true))
                            return
                        }
                        try await writer.write(control(upToDate: result.upToDate))
                        if !result.upToDate { continue }
                        // Caught up: wait for a change, keep the connection alive, stop on shutdown.
                        waiting: while true {
                            guard let wake = await iterator.next() else { return }
                            switch wake {
                            case .changed:
                                break waiting
                            case .tick:
                                try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
                                if ContinuousClock.now - lastControl >= configuration.longPollTimeout { break waiting }
                            case .shutdown:
                                try await writer.write(control(upToDate: true))
                                return
                            case .clientGone:
                                // Nobody reads any more: end the response (the store is not read again).
                                return
                            }
                        }
                    }
                }
                try await writer.finish(nil)
            })
    }

    /// One batch: at most `batchSize` events, whose JSON array with its SSE framing fits in
    /// `configuration.readBatchBytes` (so its buffer is never rounded up to the next power of two);
    /// always at least one event.
    private func readBatch(after offset: StreamOffset) async throws -> StreamReadResult {
        try await store.read(path, after: offset, limit: Self.batchSize).limited(toBytes: batchBytes - Self.framingBytes)
    }

    /// Room kept in a batch for the SSE framing and the array's brackets.
    static let framingBytes = 64

    /// `readBatchBytes`, at least 1024.
    private var batchBytes: Int { max(1024, configuration.readBatchBytes) }

    /// Whether `events` is one event too large for one buffer of `sliceBytes` with its framing.
    static func needsSlicing(_ events: [StoredEvent], sliceBytes: Int) -> Bool {
        events.count == 1 && (events.first?.data.count ?? 0) > sliceBytes - framingBytes
    }

    /// A catch-up or long-poll body: the batch as one buffer, or, for one event larger than
    /// `readBatchBytes`, streamed in slices of that size (see `write`).
    private func body(_ events: [StoredEvent]) -> ResponseBody {
        let sliceBytes = batchBytes
        guard Self.needsSlicing(events, sliceBytes: sliceBytes), let only = events.first else {
            return ResponseBody(byteBuffer: Self.jsonArray(events))
        }
        let client = ClientConnection.current
        return ResponseBody(contentLength: only.data.count + 2) { writer in
            try await Self.write(events, prefix: "", suffix: "", sliceBytes: sliceBytes, client: client, to: &writer)
            try await writer.finish(nil)
        }
    }

    /// Writes `events` as one JSON array between `prefix` and `suffix`. A batch carries at least one
    /// event, so one event can be larger than `sliceBytes`: it is written in slices of that size,
    /// each once the connection took the previous one, never copied into one buffer of its size
    /// (the stored event itself stays in memory until it is written). `sliceBytes` is at least 1024.
    static func write(
        _ events: [StoredEvent], prefix: String, suffix: String, sliceBytes: Int, client: ClientConnection?,
        to writer: inout any ResponseBodyWriter
    ) async throws {
        guard needsSlicing(events, sliceBytes: sliceBytes), let data = events.first?.data else {
            try await writer.write(jsonArray(events, prefix: prefix, suffix: suffix))
            return
        }
        try await writer.write(ByteBuffer(string: prefix + "["))
        var start = data.startIndex
        while start < data.endIndex {
            let end = data.index(start, offsetBy: min(sliceBytes, data.endIndex - start))
            await client?.writeBarrier()
            try await writer.write(ByteBuffer(bytes: data[start..<end]))
            start = end
        }
        try await writer.write(ByteBuffer(string: "]" + suffix))
    }

    static func control(_ object: [String: JSONValue]) -> ByteBuffer {
        ByteBuffer(string: "event: control\ndata:" + JSONValue.object(object).jsonString + "\n\n")
    }

    /// The stored event objects as one JSON array, without re-encoding them, between `prefix` and
    /// `suffix` (an SSE frame's framing), in one buffer allocated at its final size: a batch is up to
    /// `readBatchBytes`, and a buffer grown by appending would hold up to twice that per connection.
    static func jsonArray(_ events: [StoredEvent], prefix: String = "", suffix: String = "") -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(events.reduce(2 + prefix.utf8.count + suffix.utf8.count) { $0 + $1.data.count + 1 })
        buffer.writeString(prefix)
        buffer.writeString("[")
        for (index, event) in events.enumerated() {
            if index > 0 { buffer.writeString(",") }
            buffer.writeBytes(event.data)
        }
        buffer.writeString("]")
        buffer.writeString(suffix)
        return buffer
    }
}

extension StreamReadResult {
    /// The first events whose data, with one separator byte each, adds up to at most `bytes` (always
    /// at least one); a result that was cut is not up to date, and its `nextOffset` is its last event's.
    func limited(toBytes bytes: Int) -> StreamReadResult {
        var total = 0
        var count = 0
        for event in events {
            total += event.data.count + 1  // and its comma or bracket
            if count > 0 && total > bytes { break }
            count += 1
        }
        guard count < events.count, let last = events.prefix(count).last else { return self }
        return StreamReadResult(events: Array(events.prefix(count)), nextOffset: last.offset, upToDate: false, closed: closed)
    }
}
