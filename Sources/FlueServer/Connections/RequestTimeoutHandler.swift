import NIOCore
import NIOHTTPTypes

/// Closes connections whose client is too slow to send a request, or idle between requests
/// (slowloris-style descriptor exhaustion). One timer per connection, chosen by what the
/// connection is doing:
///
/// | the connection is | timer | on expiry |
/// | --- | --- | --- |
/// | accepted, nothing received yet | head, from the accept | close |
/// | between requests (keep-alive) | keep-alive, from the last response's end | close (once NIO has written the response out) |
/// | holding part of a request head | head, from its first byte (from the accept for the first request) | `408` envelope, close |
/// | reading the body of the request it answers next | body, restarted by every part that arrives (the longest pause) | close |
/// | answering (request read, response in progress), or reading a request pipelined behind a response | none: SSE, long-poll and `?wait=result` may take long; a stalled writer is `StalledWriteHandler`'s | — |
///
/// HTTP requests are only seen once the head is parsed, so a `RequestBytesObserver` at the front of
/// the pipeline reports raw bytes: that is how a partial head is told apart from an idle connection.
/// Both handlers run on the connection's event loop.
final class RequestTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    struct Timeouts {
        var head: TimeAmount
        var body: TimeAmount
        var keepAlive: TimeAmount
    }

    private enum Timer: Equatable {
        case none, head, body, keepAlive
    }

    private let timeouts: Timeouts
    /// Between a request's head and its end.
    private var readingRequest = false
    /// Request heads read minus response ends written.
    private var responsesPending = 0
    /// Raw bytes arrived that are not yet part of a parsed head.
    private var partialHead = false
    /// Whether a response was completed on this connection (keep-alive applies from then on).
    private var answeredOne = false
    private var running = Timer.none
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?
    private let observer = RequestBytesObserver()

    init(_ timeouts: Timeouts) {
        self.timeouts = timeouts
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        observer.owner = self
        do {
            try context.pipeline.syncOperations.addHandler(observer, position: .first)
        } catch {
            context.fireErrorCaught(error)
        }
        if context.channel.isActive { update() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
        observer.owner = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        update()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    /// Raw bytes arrived (from the observer).
    fileprivate func bytesArrived() {
        guard !readingRequest, !partialHead else { return }
        partialHead = true
        update()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            responsesPending += 1
            readingRequest = true
            partialHead = false
            update()
        case .body:
            // The body timeout is the longest pause between parts.
            if running == .body { start(.body) }
        case .end:
            readingRequest = false
            update()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            responsesPending = max(0, responsesPending - 1)
            answeredOne = true
            update()
        }
        context.write(data, promise: promise)
    }

    /// Starts the timer the connection's state calls for, unless it is already running (so a
    /// head's time counts from its first byte, not its last).
    private func update() {
        let wanted: Timer
        if readingRequest {
            // A request pipelined behind a response waits for it (backpressure, not the client).
            wanted = responsesPending == 1 ? .body : .none
        } else if responsesPending > 0 {
            wanted = .none
        } else if partialHead || !answeredOne {
            wanted = .head
        } else {
            wanted = .keepAlive
        }
        if wanted != running { start(wanted) }
    }

    private func start(_ kind: Timer) {
        timer?.cancel()
        timer = nil
        running = kind
        let timeout: TimeAmount
        switch kind {
        case .none: return
        case .head: timeout = timeouts.head
        case .body: timeout = timeouts.body
        case .keepAlive: timeout = timeouts.keepAlive
        }
        guard let context else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            self?.expired()
        }
    }

    private func stop() {
        timer?.cancel()
        timer = nil
        running = .none
    }

    private func expired() {
        timer = nil
        guard let context else { return }
        switch running {
        case .head where partialHead:
            // Nothing of this request reached the application: answer below the HTTP codec.
            observer.writeAndClose(Self.requestTimeout(after: timeouts.head))
        case .keepAlive:
            // The last response may still be on its way out of NIO's buffer: let it finish.
            let buffered = (try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? 0
            if buffered > 0 { return start(.keepAlive) }
            context.close(promise: nil)
        case .head, .body:
            context.close(promise: nil)
        case .none:
            break
        }
    }

    /// The raw `408` for a head that did not arrive in time (the error envelope, `Connection: close`).
    static func requestTimeout(after timeout: TimeAmount) -> ByteBuffer {
        let seconds = Double(timeout.nanoseconds) / 1e9
        let shown = seconds == seconds.rounded() ? String(Int64(seconds)) : String(seconds)
        let error = FlueHTTPError(
            .requestTimeout, type: "request_timeout", message: "The request was not received in time.",
            details: "The request head must arrive within \(shown) s (REQUEST_HEAD_TIMEOUT_SECONDS).")
        let body = error.envelope.jsonString
        var response = ByteBuffer()
        response.writeString(
            "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
                + "Connection: close\r\nX-Content-Type-Options: nosniff\r\nCross-Origin-Resource-Policy: cross-origin\r\n\r\n")
        response.writeString(body)
        return response
    }
}

/// Sits first in the pipeline and tells its `RequestTimeoutHandler` when request bytes arrive; also
/// writes that handler's raw `408`, which must not pass through the HTTP encoder.
final class RequestBytesObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    fileprivate weak var owner: RequestTimeoutHandler?
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        owner?.bytesArrived()
        context.fireChannelRead(data)
    }

    fileprivate func writeAndClose(_ bytes: ByteBuffer) {
        guard let context else { return }
        let channel = context.channel
        context.writeAndFlush(NIOAny(bytes)).whenComplete { _ in channel.close(promise: nil) }
    }
}
