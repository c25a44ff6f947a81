import NIOCore
import NIOHTTPTypes

/// Closes connections whose client is too slow to send a request, or idle between requests
/// (slowloris-style descriptor exhaustion). One timer per connection, by phase:
///
/// | phase | timer | on expiry |
/// | --- | --- | --- |
/// | accepted, nothing received yet | head, from the accept | close |
/// | between requests (keep-alive) | keep-alive, from the last response's end | close |
/// | part of a request head received | head, from its first byte (from the accept for the first request) | `408` envelope, close |
/// | head received, body not complete | body, from the head | close |
/// | request read, response in progress | none (SSE, long-poll and `?wait=result` may take long; a stalled writer is `StalledWriteHandler`'s) | — |
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

    private enum Phase {
        /// Waiting for a request's first byte: on a new connection (`afterResponse == false`) the
        /// head timer runs from the accept, between requests the keep-alive timer runs.
        case idle(afterResponse: Bool)
        case readingHead
        case readingBody
        case responding
    }

    private let timeouts: Timeouts
    private var phase = Phase.idle(afterResponse: false)
    /// Request heads read minus response ends written.
    private var responsesPending = 0
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
        if context.channel.isActive { start(timeouts.head) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer()
        observer.owner = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if timer == nil, case .idle(afterResponse: false) = phase { start(timeouts.head) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimer()
        context.fireChannelInactive()
    }

    /// Raw bytes arrived (from the observer).
    fileprivate func bytesArrived() {
        guard case .idle(let afterResponse) = phase else { return }
        phase = .readingHead
        // The first request's head counts from the accept, so dripping bytes from the start gains nothing.
        if afterResponse { start(timeouts.head) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            responsesPending += 1
            phase = .readingBody
            start(timeouts.body)
        case .body:
            break
        case .end:
            if responsesPending > 0 {
                phase = .responding
                cancelTimer()
            } else {
                // The response was written before the body was read (a 413, say).
                phase = .idle(afterResponse: true)
                start(timeouts.keepAlive)
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            responsesPending = max(0, responsesPending - 1)
            if responsesPending == 0, case .responding = phase {
                phase = .idle(afterResponse: true)
                start(timeouts.keepAlive)
            }
        }
        context.write(data, promise: promise)
    }

    private func start(_ timeout: TimeAmount) {
        cancelTimer()
        guard let context else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            self?.expired()
        }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
    }

    private func expired() {
        timer = nil
        guard let context else { return }
        switch phase {
        case .readingHead:
            // Nothing of this request reached the application: answer below the HTTP codec.
            observer.writeAndClose(Self.requestTimeout(after: timeouts.head))
        case .idle, .readingBody:
            context.close(promise: nil)
        case .responding:
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
