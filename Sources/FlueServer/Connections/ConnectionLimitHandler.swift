import FlueRuntime
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

/// The connections a server has open, shared by its connections' `ConnectionLimitHandler`s: those
/// it serves (at most `maxConnections`) and those beyond, kept only to answer one request.
public final class OpenConnections: Sendable {
    private let servedCount = Atomic(0)
    private let overflowCount = Atomic(0)

    public init() {}

    /// Connections being served.
    public var served: Int { servedCount.load(ordering: .relaxed) }
    /// Connections beyond the limit, waiting to answer their one request.
    public var overflow: Int { overflowCount.load(ordering: .relaxed) }
    /// All open connections.
    public var current: Int { served + overflow }

    /// Counts a new connection; `false` if it is beyond `limit` (then it counts as overflow).
    func admit(limit: Int) -> Bool {
        if servedCount.add(1, ordering: .relaxed).newValue <= limit { return true }
        servedCount.subtract(1, ordering: .relaxed)
        overflowCount.add(1, ordering: .relaxed)
        return false
    }

    func closed(served: Bool) {
        if served { servedCount.subtract(1, ordering: .relaxed) } else { overflowCount.subtract(1, ordering: .relaxed) }
    }
}

/// Enforces `FlueConfiguration.maxConnections` per connection. A connection accepted while the
/// server already serves `maxConnections` is *overflow*: it answers one request and closes. That
/// request is refused `503 service_unavailable` with `Retry-After` and `Connection: close` (the
/// error envelope, `meta.limit` `"connections"`), unless it asks for the health check path, which is
/// served normally (so a load balancer's checks keep passing under overload). Anything pipelined
/// after it is dropped. Hummingbird stops accepting at `maxConnections + connectionOverflow`;
/// further clients wait in the listen backlog.
final class ConnectionLimitHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum Overflow {
        /// No request seen yet.
        case waiting
        /// The one request is passed on to the application (the health check).
        case serving
        /// The one request was refused, or answered; later parts are dropped.
        case done
    }

    private let connections: OpenConnections
    private let maxConnections: Int
    private let healthCheckPath: String
    private let retryAfter: Int
    /// `nil` until counted; then whether it is served (`true`) or overflow.
    private var served: Bool?
    private var overflow = Overflow.waiting

    init(connections: OpenConnections, maxConnections: Int, healthCheckPath: String, retryAfter: Int) {
        self.connections = connections
        self.maxConnections = maxConnections
        self.healthCheckPath = healthCheckPath
        self.retryAfter = retryAfter
    }

    func handlerAdded(context: ChannelHandlerContext) {
        served = connections.admit(limit: maxConnections)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if let served {
            connections.closed(served: served)
            self.served = nil
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard served == false else { return context.fireChannelRead(data) }
        let part = unwrapInboundIn(data)
        switch (overflow, part) {
        case (.waiting, .head(let request)):
            let path = request.path.map { String($0.prefix { $0 != "?" }) }
            if path == healthCheckPath {
                overflow = .serving
                context.fireChannelRead(data)
            } else {
                overflow = .done
                refuse(context: context, method: request.method)
            }
        case (.serving, .body), (.serving, .end):
            context.fireChannelRead(data)
        case (.serving, .head), (.done, _), (.waiting, _):
            // A second request on a connection that answers only one.
            overflow = .done
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard served == false else { return context.write(data, promise: promise) }
        switch unwrapOutboundIn(data) {
        case .head(var response):
            response.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(response)), promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            overflow = .done
            let channel = context.channel
            context.writeAndFlush(data).whenComplete { result in
                promise?.completeWith(result)
                channel.close(promise: nil)
            }
        }
    }

    private func refuse(context: ChannelHandlerContext, method: HTTPRequest.Method) {
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
        if method != .head { context.write(wrapOutboundOut(.body(body)), promise: nil) }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
