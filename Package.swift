// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "flue-swift",
    // Apple platforms for FlueClient (the server targets build on Linux and macOS).
    platforms: [.macOS(.v15), .iOS(.v18), .tvOS(.v18), .watchOS(.v11), .visionOS(.v2)],
    products: [
        .library(name: "FlueRuntime", targets: ["FlueRuntime"]),
        .library(name: "FlueProviders", targets: ["FlueProviders"]),
        .library(name: "FlueLocalSandbox", targets: ["FlueLocalSandbox"]),
        .library(name: "FluePersistence", targets: ["FluePersistence"]),
        .library(name: "FluePersistenceTesting", targets: ["FluePersistenceTesting"]),
        .library(name: "FluePostgres", targets: ["FluePostgres"]),
        .library(name: "FlueSQLite", targets: ["FlueSQLite"]),
        .library(name: "FlueEngine", targets: ["FlueEngine"]),
        .library(name: "FlueServer", targets: ["FlueServer"]),
        .library(name: "FlueAuth", targets: ["FlueAuth"]),
        .library(name: "FlueOpenTelemetry", targets: ["FlueOpenTelemetry"]),
        .library(name: "FlueClient", targets: ["FlueClient"]),
        .library(name: "FlueTestSupport", targets: ["FlueTestSupport"]),
        .library(name: "FluePersistenceSelection", targets: ["FluePersistenceSelection"]),
        .executable(name: "hello-agents", targets: ["HelloAgents"]),
        .executable(name: "flue-bench", targets: ["FlueBench"]),
        .executable(name: "flue", targets: ["FlueCLI"]),
        .library(name: "FlueScaffold", targets: ["FlueScaffold"]),
        .executable(name: "fake-model-server", targets: ["FakeModelServerCommand"]),
    ],
    traits: [
        .trait(name: "OTLPGRPC", description: "OTLP/gRPC trace export in FlueOpenTelemetry (adds gRPC to the build)"),
        .default(enabledTraits: []),
    ],
    dependencies: [
        // 1.16: LogHandler.log(event:) (JSONLogHandler).
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.24.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.21.0"),
        // SHA-256 for idempotency keys; postgres-nio builds it already.
        .package(url: "https://github.com/apple/swift-crypto.git", "3.9.0"..<"6.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.27.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.24.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        // JWT verification (HS256, RS256, ES256, JWKS) and the authenticator middleware protocol.
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.1.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.0.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
        // 1.0.x: FlueLocalSandbox signals the child's process group before swift-subprocess reaps
        // the child, which this version does only after the run's body returns.
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", .upToNextMinor(from: "1.0.2")),
        // Metrics API (Hummingbird builds it already) and its Prometheus exporter for `/metrics`.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        // Tracing API (Hummingbird and AsyncHTTPClient build it already).
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.1.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        // OTLP trace export: HTTP/protobuf always; gRPC with this package's OTLPGRPC trait.
        .package(
            url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0",
            traits: ["OTLPHTTP", .trait(name: "OTLPGRPC", condition: .when(traits: ["OTLPGRPC"]))]),
    ],
    targets: [
        // The agent runtime: definitions, sessions, the agent loop, tools, events, errors, and the
        // harness (sandboxes, built-in tools, skills). Knows nothing of HTTP, SQL or any
        // particular model provider. Yams reads SKILL.md frontmatter.
        .target(
            name: "FlueRuntime",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // The `local` sandbox: a real directory and a real shell (swift-subprocess), optionally
        // isolated with bubblewrap. Its own module so apps that keep agents in the virtual
        // sandbox do not compile a process launcher.
        .target(
            name: "FlueLocalSandbox",
            dependencies: [
                "FlueRuntime",
                .product(name: "Subprocess", package: "swift-subprocess"),
            ]
        ),
        // Real model providers over HTTP: Anthropic Messages, OpenAI Chat Completions and
        // OpenAI-compatible servers, with streaming.
        .target(
            name: "FlueProviders",
            dependencies: [
                "FlueRuntime",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Store protocols (runs, event streams, submissions), stream offsets and the in-memory adapter.
        // Adapters are swift-service-lifecycle services providers (PersistenceAdapter.takeServices).
        .target(
            name: "FluePersistence",
            dependencies: [
                "FlueRuntime",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The contract suite every persistence adapter must pass.
        .target(
            name: "FluePersistenceTesting",
            dependencies: ["FluePersistence", "FlueRuntime"]
        ),
        // SQLite adapter (one file, WAL): single-host durability.
        .target(
            name: "FlueSQLite",
            dependencies: [
                "FluePersistence",
                "FlueRuntime",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // Postgres adapter: shared by replicas, LISTEN/NOTIFY wake-ups across processes.
        .target(
            name: "FluePostgres",
            dependencies: [
                "FluePersistence",
                "FlueRuntime",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The durable engine: workflow runs (heartbeats, orphan recovery), agent submissions
        // (admission, claim under a lease, attempts, settlement, recovery, drain), the event pipe
        // and live wake-ups. No HTTP: FlueServer serves it; code can drive it directly.
        .target(
            name: "FlueEngine",
            dependencies: [
                "FlueRuntime",
                "FluePersistence",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // The HTTP shell over the engine: routes, request decoding, error envelopes, Durable
        // Streams reads, connection limits and timeouts, configuration, serve/run. Mountable on a
        // user-owned Hummingbird router.
        .target(
            name: "FlueServer",
            dependencies: [
                "FlueEngine",
                "FlueRuntime",
                "FlueProviders",
                "FluePersistence",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // Trace export to an OpenTelemetry collector from the OTEL_* environment (swift-otel).
        .target(
            name: "FlueOpenTelemetry",
            dependencies: [
                "FlueRuntime",
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Authenticators for the access policy: static bearer tokens and JWT (shared secret or a
        // JWKS URL), and the environment's access configuration.
        .target(
            name: "FlueAuth",
            dependencies: [
                "FlueServer",
                "FlueRuntime",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // A client for deployed servers (Linux and Apple platforms, no server code): the routes,
        // typed errors and resumable Durable Streams reads over AsyncHTTPClient.
        .target(
            name: "FlueClient",
            dependencies: [
                "FlueRuntime",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Chooses the persistence adapter from the environment (DATABASE_URL → Postgres,
        // SQLITE_PATH → SQLite, else memory) for applications that want Flue's db.ts behaviour.
        .target(
            name: "FluePersistenceSelection",
            dependencies: [
                "FluePersistence",
                "FluePostgres",
                "FlueSQLite",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The example application: workflows translate and summarize, agent assistant, /health.
        // FlueTestSupport is linked only for `serve --fake-model` (a local fake model server, so the
        // example runs without a provider key); production apps need not link it.
        .executableTarget(
            name: "HelloAgents",
            dependencies: [
                "FlueEngine",
                "FlueServer",
                "FlueAuth",
                "FlueOpenTelemetry",
                "FluePersistenceSelection",
                "FlueTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/HelloAgents"
        ),
        // Project scaffolding: templates for `flue init` and the deployment files.
        .target(name: "FlueScaffold"),
        // The standalone `flue` command: `flue init`, and `logs`, `invoke`, `prompt` against a server.
        .executableTarget(
            name: "FlueCLI",
            dependencies: [
                "FlueScaffold",
                "FlueClient",
                "FlueRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Storage benchmarks (bench/run.sh drives them and writes BENCHMARKS.md).
        .executableTarget(
            name: "FlueBench",
            dependencies: [
                "FluePersistence",
                "FluePostgres",
                "FlueRuntime",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/FlueBench"
        ),
        // A local model server that speaks the Anthropic and OpenAI wire protocols and replays
        // scripted turns; used by the tests, benchmarks and deployment checks.
        .target(
            name: "FlueTestSupport",
            dependencies: [
                "FlueRuntime",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
            ]
        ),
        .executableTarget(
            name: "FakeModelServerCommand",
            dependencies: [
                "FlueTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        // The server the submission fault tests start and kill (agent `worker`, tool `side_effect`).
        .executableTarget(
            name: "FlueFaultApp",
            dependencies: [
                "FlueServer",
                "FluePersistenceSelection",
                "FlueRuntime",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Tests/FaultTestApp"
        ),
        .testTarget(
            name: "FlueRuntimeTests",
            dependencies: ["FlueRuntime", "FlueTestSupport"]
        ),
        // The engine from code, without HTTP: admission, settlement, address checks, recovery rules.
        .testTarget(
            name: "FlueEngineTests",
            dependencies: [
                "FlueEngine",
                "FluePersistence",
                "FlueRuntime",
                "FlueTestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "FlueScaffoldTests",
            dependencies: ["FlueScaffold"]
        ),
        .testTarget(
            name: "FluePersistenceTests",
            dependencies: ["FluePersistence", "FluePersistenceTesting", "FluePostgres", "FlueSQLite", "TestDatabase"]
        ),
        .testTarget(
            name: "FlueServerTests",
            dependencies: [
                "FlueEngine",
                "FlueServer",
                "FlueAuth",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                "FlueOpenTelemetry",
                "FluePersistenceSelection",
                "TestDatabase",
                "FlueTestSupport",
                "FluePostgres",
                "FlueSQLite",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        // Fresh Postgres databases for the tests that need one (TEST_DATABASE_URL).
        .target(
            name: "TestDatabase",
            dependencies: [
                "FluePostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Tests/TestDatabase"
        ),
        // Tests that run real server processes: the example, replicas on one Postgres, kill -9
        // during submissions, a database outage.
        .testTarget(
            name: "FlueProcessTests",
            dependencies: [
                "FlueRuntime",
                "FlueClient",
                "FluePersistence",
                "FluePostgres",
                "FlueTestSupport",
                "TestDatabase",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The local sandbox: escapes, environment, process groups, output caps, bubblewrap.
        .testTarget(
            name: "FlueLocalSandboxTests",
            dependencies: ["FlueLocalSandbox", "FlueRuntime"]
        ),
        .testTarget(
            name: "FlueProvidersTests",
            dependencies: [
                "FlueRuntime",
                "FlueLocalSandbox",
                "FlueProviders",
                "FlueTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
