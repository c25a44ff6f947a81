// Applications that serve Flue name engine types (`WorkflowRegistration`, `AgentRegistration`,
// `Engine`) in the closures they pass to `serve`; importing FlueServer is enough for that.
@_exported import FlueEngine
import FluePersistence
import Foundation
import FlueProviders
import FlueRuntime
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The HTTP shell around an ``Engine``: its configuration, the limits on live reads and
/// connections, the Hummingbird application that serves ``FlueRoutes``, and the service group
/// that runs both until SIGTERM or SIGINT. Most applications only call
/// ``serve(environment:developmentMode:label:prefix:persistence:access:workflows:agents:routes:)``.
public final class FlueServer: Sendable {
    public let engine: Engine
    public let configuration: FlueConfiguration
    /// Live reads (long-poll, SSE) in progress, bounded by `maxLiveReads` / `maxLiveReadsPerStream`.
    public let liveReads: LiveReadLimiter
    /// Connections open on the server built by ``application(router:onServerRunning:)``, bounded
    /// by `maxConnections`.
    public let openConnections = OpenConnections()
    /// Whether ``FlueRoutes`` without an ``AccessPolicy`` were registered for this server: then
    /// ``run(_:persistence:persistenceServices:)`` warns when it listens beyond loopback.
    let servesOpenRoutes = Atomic<Bool>(false)
    /// The server's metrics, when ``FlueConfiguration/metrics`` is `prometheus`: they observe the
    /// engine's events, and ``FlueRoutes`` count requests and serve `GET /metrics`.
    public let metrics: FlueMetrics?

    /// Serves `engine` with `configuration` (whose ``FlueConfiguration/engine`` part is the
    /// engine's business: pass it to the engine you create). With `METRICS=prometheus`, pass the
    /// ``FlueMetrics`` whose factory the engine's configuration got (``serve(environment:developmentMode:label:prefix:persistence:access:observe:workflows:agents:routes:)``
    /// does); without, one is made here.
    public init(engine: Engine, configuration: FlueConfiguration, metrics: FlueMetrics? = nil) {
        self.engine = engine
        self.configuration = configuration
        let metrics = configuration.metrics == .prometheus ? (metrics ?? FlueMetrics()) : nil
        self.metrics = metrics
        if let metrics {
            engine.observe(metrics.record)
            engine.reportMetrics(to: metrics.factory)
        }
        self.liveReads = LiveReadLimiter(
            maxTotal: configuration.maxLiveReads, maxPerStream: configuration.maxLiveReadsPerStream,
            retryAfterSeconds: configuration.overloadRetryAfterSeconds)
    }

    public var logger: Logger { engine.logger }

    /// Builds the HTTP server around `router` (register `FlueRoutes` and, optionally,
    /// `RouteNotFoundMiddleware` on it first): the configured host, port and listen backlog, the
    /// request timeouts, the connection limit, the send-buffer cap and stalled-writer reset, and
    /// client-disconnect tracking for live reads (see docs/server.md, "Limits and timeouts").
    public func application<Context: RequestContext>(
        router: Router<Context>, onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol where Context.Source == ApplicationRequestContextSource {
        let configuration = self.configuration
        let stallTimeout = TimeAmount(configuration.writeStallTimeout)
        let timeouts = RequestTimeoutHandler.Timeouts(
            head: TimeAmount(configuration.requestHeadTimeout), body: TimeAmount(configuration.requestBodyTimeout),
            keepAlive: TimeAmount(configuration.keepAliveTimeout))
        let connections = openConnections
        let channelConfiguration = HTTP1Channel.Configuration(additionalChannelHandlers: [
            ConnectionLimitHandler(
                connections: connections, maxConnections: configuration.maxConnections,
                healthCheckPath: configuration.healthCheckPath, retryAfter: configuration.overloadRetryAfterSeconds),
            RequestTimeoutHandler(timeouts),
            StalledWriteHandler(sendBufferBytes: configuration.sendBufferBytes, stallTimeout: stallTimeout),
            ClientDisconnectHandler(),
        ])
        // Each request runs with `ClientConnection.current` set, so live reads notice a client that left.
        let server = HTTPServerBuilder { responder in
            HTTP1Channel(
                responder: { request, writer, channel in
                    var writer = Optional(writer)
                    try await ClientConnection.$current.withValue(ClientConnection.lookup(channel)) {
                        try await responder(request, writer.take()!, channel)
                    }
                },
                configuration: channelConfiguration)
        }
        return Application(
            router: router,
            server: server,
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: "flue",
                backlog: configuration.listenBacklog,
                availableConnectionsDelegate: MaximumAvailableConnections(
                    Self.acceptLimit(configuration), logger: logger)),
            onServerRunning: onServerRunning,
            logger: logger)
    }

    /// Credentials configured for a deployment whose Flue routes were registered open: the
    /// application forgot to pass the access policy, and starting would expose what the operator
    /// meant to protect.
    func refusalOfOpenRoutes(_ environment: [String: String]) -> ConfigurationError? {
        guard servesOpenRoutes.load(ordering: .relaxed) else { return nil }
        guard let variable = Self.credentialVariables.first(where: { !(environment[$0] ?? "").isEmpty }) else { return nil }
        return ConfigurationError(
            variable: variable,
            message: "\(variable) is set but Flue routes were registered without an access policy; pass "
                + "`access: try await AccessPolicy.fromEnvironment()` (module FlueAuth) to FlueServer.serve or FlueRoutes, "
                + "or unset \(variable)")
    }

    /// The variables that configure credentials (read by FlueAuth's `AccessPolicy.fromEnvironment`).
    static let credentialVariables = ["API_TOKENS", "JWT_SECRET", "JWT_JWKS_URL"]

    /// Whether `host` only accepts connections from this machine.
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// Connections accepted at most: the served ones and the overflow band (saturating, so
    /// `maxConnections = .max` means no limit).
    static func acceptLimit(_ configuration: FlueConfiguration) -> Int {
        let (sum, overflow) = configuration.maxConnections.addingReportingOverflow(max(0, configuration.connectionOverflow))
        return overflow ? .max : sum
    }

    /// Serves until SIGTERM/SIGINT, then shuts down in order: the engine first (live reads end
    /// with a final control frame, new work is refused, running work gets the grace period),
    /// then the HTTP server, then `persistenceServices` (the adapter's pool and listeners), then
    /// `persistence` is closed. Returns normally after a clean drain, so the process exits 0.
    ///
    /// Take `persistenceServices` with ``PersistenceAdapter/takeServices()`` *before*
    /// `persistence.connect()` and pass them here; services taken and never run leave the
    /// stores' queries waiting forever. `nil` takes them now, which yields nothing once
    /// `connect()` has run: the adapter then runs them itself until `close()`.
    /// `services` (a trace exporter, say) start first and stop last, after the store's.
    public func run(
        _ application: some ApplicationProtocol, persistence: (any PersistenceAdapter)? = nil,
        persistenceServices: [any Service]? = nil, services extra: [any Service] = []
    ) async throws {
        if let error = refusalOfOpenRoutes(ProcessInfo.processInfo.environment) {
            logger.critical("\(error)")
            throw error
        }
        if servesOpenRoutes.load(ordering: .relaxed), !Self.isLoopback(configuration.host) {
            logger.warning(
                "Flue routes are served without authentication beyond loopback: anyone who reaches this address can run agents on your provider keys and read every stream. Set API_TOKENS or JWT_SECRET / JWT_JWKS_URL (docs/server.md, \"Access control\").",
                metadata: ["host": "\(configuration.host)"])
        }
        // A service group stops its services in reverse order: the engine, the HTTP server, then the store's.
        let services = extra + (persistenceServices ?? persistence?.takeServices() ?? []) + [application, engine]
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            try await group.run()
        } catch {
            try? await persistence?.close()
            throw error
        }
        try await persistence?.close()
    }
}

/// Answers unmatched requests with Flue's envelopes (use on an app that is all Flue): a method
/// Flue does not serve on one of its paths (`TRACE /workflows/summarize`) is `405` with `Allow`
/// (docs/server.md, "Routes"), anything else `404 route_not_found`.
public struct RouteNotFoundMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Where `FlueRoutes` are mounted (`""` or `"/api"`).
    public let prefix: String

    public init(prefix: String = "") {
        self.prefix = PathParameters.normalizedPrefix(prefix)
    }

    public func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let path = request.uri.path
            let relative: Substring? =
                prefix == "/" ? Substring(path) : path.hasPrefix(prefix + "/") ? path.dropFirst(prefix.count) : nil
            if let relative, let allow = PathParameters.allowedMethods(path: String(relative)),
                !allow.contains(request.method)
            {
                return FlueHTTPError.methodNotAllowed(request.method, allow: allow).response()
            }
            return FlueHTTPError.routeNotFound(request.method, request.uri.path).response()
        }
    }
}
