import Foundation

/// The files of a new project.
public enum ProjectTemplates {
    /// Every file `flue init` writes, by relative path.
    public static func files(_ options: ScaffoldOptions) -> [(path: String, contents: String)] {
        var files: [(String, String)] = [
            ("Package.swift", packageManifest(options)),
            ("Sources/App/App.swift", appSource(options)),
            (".env.example", envExample(options)),
            (".gitignore", gitignore),
            ("README.md", readme(options)),
        ]
        if options.deploy != .none {
            files.append(("Dockerfile", DeploymentTemplates.dockerfile(product: options.name)))
            files.append((".dockerignore", DeploymentTemplates.dockerignore))
        }
        if options.deploy == .sst {
            files.append(("sst.config.ts", DeploymentTemplates.sstConfig(options)))
        }
        return files
    }

    /// The package identity SwiftPM gives the Flue dependency (the URL's or path's last component).
    static func flueIdentity(_ options: ScaffoldOptions) -> String {
        guard let path = options.fluePath else { return "flue-swift" }
        return URL(fileURLWithPath: path).standardizedFileURL.lastPathComponent.lowercased()
    }

    static func packageManifest(_ options: ScaffoldOptions) -> String {
        let dependency =
            options.fluePath.map { ".package(path: \"\(URL(fileURLWithPath: $0).standardizedFileURL.path)\")" }
            ?? ".package(url: \"\(ScaffoldOptions.flueURL)\", from: \"\(ScaffoldOptions.flueVersion)\")"
        let identity = flueIdentity(options)
        return """
            // swift-tools-version: 6.1
            import PackageDescription

            let package = Package(
                name: "\(options.name)",
                platforms: [.macOS(.v15)],
                dependencies: [
                    // Flue for Swift. To work against a local checkout instead:
                    // .package(path: "../flue-swift"), and use that directory's name as `package:` below.
                    \(dependency),
                    .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.6.0"),
                    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
                ],
                targets: [
                    .executableTarget(
                        name: "\(options.name)",
                        dependencies: [
                            .product(name: "FlueServer", package: "\(identity)"),
                            // API_TOKENS / JWT_SECRET / JWT_JWKS_URL: who may call the Flue routes.
                            .product(name: "FlueAuth", package: "\(identity)"),
                            // Traces to an OpenTelemetry collector when OTEL_EXPORTER_OTLP_ENDPOINT is set.
                            .product(name: "FlueOpenTelemetry", package: "\(identity)"),
                            // Picks Postgres, SQLite or memory from DATABASE_URL / SQLITE_PATH.
                            .product(name: "FluePersistenceSelection", package: "\(identity)"),
                            .product(name: "FlueTestSupport", package: "\(identity)"),
                            .product(name: "Hummingbird", package: "hummingbird"),
                            .product(name: "ArgumentParser", package: "swift-argument-parser"),
                        ],
                        path: "Sources/App"
                    )
                ],
                swiftLanguageModes: [.v6]
            )

            """
    }

    static func appSource(_ options: ScaffoldOptions) -> String {
        """
        import ArgumentParser
        import FlueAuth
        import FlueOpenTelemetry
        import FluePersistenceSelection
        import FlueProviders
        import FlueRuntime
        import FlueServer
        import FlueTestSupport
        import Foundation
        import Hummingbird

        // MARK: - Definitions

        struct GreetInput: Codable, Sendable {
            var name: String
        }

        struct Greeting: Codable, Sendable {
            enum Tone: String, Codable, CaseIterable, Sendable { case formal, friendly }
            var greeting: String
            var tone: Tone
        }

        struct ClockArgs: Codable, Sendable {
            var timeZone: String?
        }

        /// The model used when MODEL_SPECIFIER is not set.
        let fallbackModel: ModelSpecifier = "\(options.model)"

        /// An agent with one custom tool.
        func assistant(model: ModelSpecifier) throws -> Agent {
            let clock = try FunctionTool(name: "current_time", description: "The current date and time.") {
                (args: ClockArgs) in
                Date().formatted(.iso8601)
            }
            return try Agent(
                name: "assistant", model: model, instructions: "You are a concise, helpful assistant.", tools: [clock])
        }

        /// The agents this server runs. `.http` exposes POST/GET /agents/<name>/<id>: every id is
        /// one durable conversation.
        func agents(model: ModelSpecifier) throws -> [AgentRegistration] {
            [.http(try assistant(model: model))]
        }

        /// The workflows this server runs. `.http` exposes POST /workflows/<name>.
        func workflows(model: ModelSpecifier) throws -> [WorkflowRegistration] {
            let agent = try assistant(model: model)
            let greet = try Workflow(
                name: "greet", description: "Greets someone by name.", payload: GreetInput.self, result: Greeting.self
            ) { context in
                context.log.info("greeting", ["name": .string(context.payload.name)])
                let session = try await context.initialize(agent).session()
                return try await session.prompt("Write a one-line greeting for \\(context.payload.name).", result: Greeting.self)
            }
            return [.http(greet)]
        }

        // MARK: - Commands

        @main
        struct App: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "\(options.name)", subcommands: [Serve.self], defaultSubcommand: Serve.self)
        }

        struct Serve: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Serve the HTTP API (configured from the environment).")

            @Flag(help: "Use a local fake model server instead of a real provider (no key needed).")
            var fakeModel = false

            func run() async throws {
                var environment = ProcessInfo.processInfo.environment
                var fake: FakeModelServer?
                if fakeModel {
                    let server = try await FakeModelServer.start()
                    environment.merge(server.providerEnvironment) { $1 }
                    fake = server
                }
                // Before anything makes an HTTP client, so model requests carry the trace.
                let tracing = try FlueOpenTelemetry.bootstrap(environment: environment, serviceName: "\(options.name)")
                try await FlueServer.serve(
                    environment: environment, label: "\(options.name)",
                    persistence: try PersistenceSelection.fromEnvironment(environment),
                    // With API_TOKENS (or JWT_SECRET / JWT_JWKS_URL) set, every Flue route needs
                    // `Authorization: Bearer <token>`; /health stays public for the load balancer.
                    access: try await AccessPolicy.fromEnvironment(environment),
                    services: tracing.map { [$0] } ?? []
                ) { model in
                    try workflows(model: model ?? fallbackModel)
                } agents: { model in
                    try agents(model: model ?? fallbackModel)
                } routes: { router in
                    router.get("\(ScaffoldOptions.healthPath)") { _, _ in
                        Response(
                            status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: #"{"ok":true}"#)))
                    }
                }
                await fake?.stop()
            }
        }

        """
    }

    static func envExample(_ options: ScaffoldOptions) -> String {
        var lines = [
            "# Copy to .env for local runs; in production set these on the service (never in the image).",
            "PORT=3000",
            "\(options.keyVariable)=",
            "MODEL_SPECIFIER=\(options.model)",
            "# Bearer tokens clients must send (comma-separated, to rotate; e.g. `openssl rand -hex 32`).",
            "# Unset, the Flue routes are open: fine on localhost, never on a public address.",
            "# (Set but empty stops the start.) JWTs instead: JWT_SECRET, or JWT_JWKS_URL with JWT_ISSUER and JWT_AUDIENCE.",
            "# Per-principal limits: RATE_LIMIT_PER_MINUTE, MAX_CONCURRENT_SUBMISSIONS.",
            "# API_TOKENS=",
        ]
        switch options.database {
        case .memory: lines.append("# State is in memory. Set SQLITE_PATH or DATABASE_URL to keep it.")
        case .sqlite: lines.append("SQLITE_PATH=./\(options.name).sqlite")
        case .postgres: lines.append("DATABASE_URL=postgresql://postgres@127.0.0.1:5432/\(options.name.replacingOccurrences(of: "-", with: "_"))")
        }
        lines.append("# Traces to an OpenTelemetry collector (OTLP/HTTP), Prometheus metrics on /metrics:")
        lines.append("# OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318")
        lines.append("# METRICS=prometheus")
        lines.append("# Finished runs and submissions are removed after RETENTION_MAX_AGE_HOURS (168).")
        lines.append("# FLUE_MODE, FLUE_CLI_* and FLUE_INTERNAL_CLI_IPC are reserved: do not set them.")
        return lines.joined(separator: "\n") + "\n"
    }

    static let gitignore = """
        .build/
        .build-*/
        .swiftpm/
        .env
        *.sqlite
        *.sqlite-*
        .sst/
        node_modules/

        """

    static func readme(_ options: ScaffoldOptions) -> String {
        var text = """
            # \(options.name)

            A Flue for Swift server: one workflow (`greet`) and one agent (`assistant`), with `GET /health`.

            ```sh
            swift run \(options.name) serve --fake-model        # no key needed; or set \(options.keyVariable)
            curl -s -X POST 'localhost:3000/workflows/greet?wait=result' -H 'content-type: application/json' -d '{"name":"Ada"}'
            curl -N 'localhost:3000/runs/RUN_ID?offset=-1&live=sse'
            curl -s -X POST 'localhost:3000/agents/assistant/ada?wait=result' -H 'content-type: application/json' -d '{"message":"Hi, I am Ada"}'
            curl -N 'localhost:3000/agents/assistant/ada?offset=-1&live=sse'
            ```

            Configuration comes from the environment (see `.env.example`): `PORT`, `\(options.keyVariable)`,
            `MODEL_SPECIFIER`, for persistence `SQLITE_PATH` or `DATABASE_URL`, and `API_TOKENS` to require
            `Authorization: Bearer <token>` on every Flue route (`/health` stays public). `OTEL_EXPORTER_OTLP_ENDPOINT`
            sends traces to an OpenTelemetry collector, `METRICS=prometheus` serves `/metrics`, and
            `RETENTION_MAX_AGE_HOURS` (default 168) bounds how long finished work is kept.

            """
        if options.deploy != .none {
            text += """

                ## Container

                ```sh
                docker build -t \(options.name) .
                docker run -p 8080:8080 -e \(options.keyVariable)=... -e API_TOKENS=$(openssl rand -hex 32) \(options.name)
                ```

                """
        }
        if options.deploy == .sst {
            text += """

                ## AWS (SST v3)

                ```sh
                sst secret set \(options.secretName) <key> --stage production
                sst secret set \(ScaffoldOptions.tokenSecretName) "$(openssl rand -hex 32)" --stage production
                sst deploy --stage production
                sst remove --stage dev   # tear a stage down
                ```

                """
        }
        return text
    }

    /// Writes the project into `directory`, which must not exist or be empty.
    public static func write(_ options: ScaffoldOptions, into directory: URL) throws -> [String] {
        try options.validate()
        let fileManager = FileManager.default
        if let existing = try? fileManager.contentsOfDirectory(atPath: directory.path), !existing.isEmpty {
            throw ScaffoldError("\(directory.path) is not empty; choose a new directory")
        }
        var written: [String] = []
        for (path, contents) in files(options) {
            let url = directory.appendingPathComponent(path)
            try fileManager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try contents.write(to: url, atomically: true, encoding: .utf8)
            written.append(path)
        }
        return written
    }
}
