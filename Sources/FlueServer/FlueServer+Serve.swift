import FluePersistence
import FlueProviders
import FlueRuntime
import Foundation
import Hummingbird
import Logging

extension FlueServer {
    /// The one call an application makes: reads the environment (SPEC §8), opens persistence
    /// (`DATABASE_URL` → Postgres, `SQLITE_PATH` → SQLite, else memory), mounts Flue's routes
    /// beside the application's own, and serves until SIGTERM/SIGINT, then drains and returns.
    ///
    /// ```swift
    /// try await FlueServer.serve(label: "my-app") { defaultModel in
    ///     [.http(try makeTranslateWorkflow(model: defaultModel ?? "anthropic/claude-sonnet-4-6"))]
    /// } agents: { defaultModel in
    ///     [.http(try Agent(name: "assistant", model: defaultModel, instructions: "Be concise."))]
    /// } routes: { router in
    ///     router.get("/health") { _, _ in Response(status: .ok) }
    /// }
    /// ```
    /// Throws ``ConfigurationError`` or a persistence error before anything listens.
    public static func serve(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        developmentMode: Bool = false,
        label: String = "flue",
        prefix: String = "",
        workflows: (_ defaultModel: ModelSpecifier?) throws -> [WorkflowRegistration],
        agents: (_ defaultModel: ModelSpecifier?) throws -> [AgentRegistration] = { _ in [] },
        routes: (Router<BasicRequestContext>) -> Void = { _ in }
    ) async throws {
        var configuration = try FlueConfiguration.fromEnvironment(environment)
        configuration.developmentMode = developmentMode
        var logger = Logger(label: label)
        logger.logLevel = configuration.logLevel
        let registry = try ProviderRegistry(environment: environment, logger: logger)
        let persistence = try PersistenceSelection.fromEnvironment(environment, logger: logger)
        try await persistence.migrate()
        let stores = try await persistence.connect()
        logger.info("persistence ready", metadata: ["adapter": "\(PersistenceSelection.describe(persistence))"])
        let host = try FlueHost(
            workflows: workflows(registry.defaultModel), agents: agents(registry.defaultModel), models: registry,
            stores: stores, configuration: configuration, logger: logger)
        let router = Router()
        router.add(middleware: RouteNotFoundMiddleware(prefix: prefix))
        routes(router)
        FlueRoutes<BasicRequestContext>(host: host).register(on: router, prefix: prefix)
        try await run(application(host: host, router: router), host: host, persistence: persistence)
    }
}
