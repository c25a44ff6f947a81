import FlueRuntime
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

/// The number of connections a server has open, shared by its connections' `ConnectionLimitHandler`s.
public final class OpenConnections: Sendable {
    private let count = Atomic(0)

    public init() {}

    /// Connections open now (the over-limit ones included).
    public var current: Int { count.load(ordering: .relaxed) }

    /// Counts a new connection; returns the count including it.
    func opened() -> Int { count.add(1, ordering: .relaxed).newValue }

    func closed() { count.subtract(1, ordering: .relaxed) }
}

/// Enforces `FlueConfiguration.maxConnections` per connection. A connection accepted while the
/// server already has `maxConnections` open is *over the limit*: each request on it is answered
/// `503 service_unavailable` with `Retry-After` and `Connection: close` (the error envelope,
/// `meta.limit` `"connections"`), except a request for the health check path, which is served
/// normally (so a load balancer's checks keep passing under overload) and then the connection closed.
/// Hummingbird stops accepting at `maxConnections + connectionOverflow`; further clients wait in the
/// listen backlog.
final class ConnectionLimitHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let connections: OpenConnections
    private let maxConnections: Int
    private let healthCheckPath: String
    private let retryAfter: Int
    private var counted = false
    private var overLimit = false
    /// Swallowing the rest of a refused request.
    private var refusing = false

    init(connections: OpenConnections, maxConnections: Int, healthCheckPath: String, retryAfter: Int) {
        self.connections = connections
        self.maxConnections = maxConnections
        self.healthCheckPath = healthCheckPath
        self.retryAfter = retryAfter
    }

    func handlerAdded(context: ChannelHandlerContext) {
        counted = true
        overLimit = connections.opened() > maxConnections
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if counted {
            counted = false
            connections.closed()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard overLimit else { return context.fireChannelRead(data) }
        switch unwrapInboundIn(data) {
        case .head(let request):
            let path = request.path.map { $0.split(separator: "?", maxSplits: 1).first.map(String.init) ?? $0 }
            if path == healthCheckPath {
                context.fireChannelRead(data)
            } else {
                refusing = true
                refuse(context: context)
            }
        case .body, .end:
            if !refusing { context.fireChannelRead(data) }
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard overLimit else { return context.write(data, promise: promise) }
        switch unwrapOutboundIn(data) {
        case .head(var response):
            response.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(response)), promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            let channel = context.channel
            context.writeAndFlush(data).whenComplete { result in
                promise?.completeWith(result)
                channel.close(promise: nil)
            }
        }
    }

    private func refuse(context: ChannelHandlerContext) {
        let error = FlueHTTPError.overloaded(
            "This server has its maximum of \(maxConnections) connections open (MAX_CONNECTIONS). "
                + "Retry after the Retry-After delay.",
            limit: "connections", max: maxConnections, retryAfter: retryAfter)
        let body = ByteBuffer(string: error.envelope.jsonString)
        var headers = HTTPFields.flueSecurity
        headers[.contentType] = "application/json"
        headers[.contentLength] = String(body.readableBytes)
        headers[.retryAfter] = String(retryAfter)
        headers[.connection] = "close"
        context.write(wrapOutboundOut(.head(HTTPResponse(status: .serviceUnavailable, headerFields: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
