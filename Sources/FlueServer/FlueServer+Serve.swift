import FlueEngine
import FluePersistence
import FlueProviders
import FlueRuntime
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

extension FlueServer {
    /// The one call an application makes: reads the environment (``FlueConfiguration``), migrates and opens
    /// `persistence` (the application's choice: `PersistenceSelection.fromEnvironment()` from
    /// `FluePersistenceSelection` picks Postgres, SQLite or memory from `DATABASE_URL` /
    /// `SQLITE_PATH`, as Flue's `db.ts` does), mounts Flue's routes beside the application's own,
    /// and serves until SIGTERM/SIGINT, then drains, closes `persistence` and returns.
    ///
    /// ```swift
    /// try await FlueServer.serve(label: "my-app", persistence: try PersistenceSelection.fromEnvironment()) { defaultModel in
    ///     [.http(try makeTranslateWorkflow(model: defaultModel ?? "anthropic/claude-sonnet-4-6"))]
    /// } agents: { defaultModel in
    ///     [.http(try Agent(name: "assistant", model: defaultModel, instructions: "Be concise."))]
    /// } routes: { router in
    ///     router.get("/health") { _, _ in Response(status: .ok) }
    /// }
    /// ```
    /// `services` run beside the server and stop after it (`FlueOpenTelemetry.bootstrap()`'s
    /// exporter, which then flushes the last spans).
    /// `observe` sees every event of every run and agent instance this process emits
    /// (``Engine/observe(_:)``): keep it fast, hand slow work to a queue of your own.
    /// `access` protects every Flue route (not the ones `routes` adds, such as `/health`); build
    /// it with `AccessPolicy.fromEnvironment()` (module FlueAuth). Without it the routes are open
    /// and the server warns at start when it listens beyond loopback.
    /// Without `persistence` state is in memory; then `DATABASE_URL` or `SQLITE_PATH` in the
    /// environment is a ``ConfigurationError`` (a deployment that sets them expects durable state).
    /// Throws ``ConfigurationError`` or a persistence error before anything listens.
    public static func serve(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        developmentMode: Bool = false,
        label: String = "flue",
        prefix: String = "",
        persistence: (any PersistenceAdapter)? = nil,
        access: AccessPolicy? = nil,
        observe: (@Sendable (ObservedEvent) -> Void)? = nil,
        services: [any Service] = [],
        workflows: (_ defaultModel: ModelSpecifier?) throws -> [WorkflowRegistration],
        agents: (_ defaultModel: ModelSpecifier?) throws -> [AgentRegistration] = { _ in [] },
        routes: (Router<BasicRequestContext>) -> Void = { _ in }
    ) async throws {
        var configuration = try FlueConfiguration.fromEnvironment(environment)
        configuration.developmentMode = developmentMode
        if configuration.logFormat == .json { JSONLogHandler.bootstrapOnce() }
        var logger = Logger(label: label)
        logger.logLevel = configuration.logLevel
        let registry = try ProviderRegistry(environment: environment, logger: logger)
        let metrics = configuration.metrics == .prometheus ? FlueMetrics() : nil
        configuration.engine.metricsFactory = metrics?.factory
        let persistence = try persistence ?? Self.inMemoryUnlessConfigured(environment)
        // Taken before `connect()`, so the service group (not the adapter) runs the pool and listeners.
        let persistenceServices = persistence.takeServices()
        try await persistence.migrate()
        let stores = try await persistence.connect()
        logger.info("persistence ready", metadata: ["adapter": "\(persistence.name)"])
        let engine = try Engine(
            workflows: workflows(registry.defaultModel), agents: agents(registry.defaultModel), models: registry,
            stores: stores, configuration: configuration.engine, logger: logger)
        if let observe { engine.observe(observe) }
        let server = FlueServer(engine: engine, configuration: configuration, metrics: metrics)
        let router = Router()
        router.add(middleware: RouteNotFoundMiddleware(prefix: prefix))
        routes(router)
        FlueRoutes<BasicRequestContext>(server: server, access: access).register(on: router, prefix: prefix)
        try await server.run(
            server.application(router: router), persistence: persistence, persistenceServices: persistenceServices,
            services: services)
    }

    /// The in-memory adapter, unless the environment asks for a database the application did not
    /// open: then starting would silently lose what the deployment expects to keep.
    static func inMemoryUnlessConfigured(_ environment: [String: String]) throws -> any PersistenceAdapter {
        for variable in ["DATABASE_URL", "SQLITE_PATH"] where !(environment[variable] ?? "").isEmpty {
            throw ConfigurationError(
                variable: variable,
                message: "\(variable) is set but the application passed no persistence adapter to FlueServer.serve; "
                    + "pass `persistence: try PersistenceSelection.fromEnvironment()` (module FluePersistenceSelection) "
                    + "or unset \(variable)")
        }
        return InMemoryPersistence()
    }
}
