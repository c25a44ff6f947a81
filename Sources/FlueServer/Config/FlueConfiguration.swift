import FlueEngine
import FlueRuntime
import Foundation
import Logging

/// Server settings, read from the environment at start (docs/server.md, "Configuration"); ``engine``
/// holds the engine's.
///
/// | variable | default | meaning |
/// | --- | --- | --- |
/// | `PORT` | 3000 | listen port |
/// | `HOST` | `0.0.0.0` | bind address |
/// | `LOG_LEVEL` | `info` | `trace` … `critical` |
/// | `METRICS` | `off` | `prometheus`: ``FlueMetrics`` on `GET /metrics` (behind the access policy) |
/// | `LOG_FORMAT` | `text` | `json`: one JSON object per log line (``JSONLogHandler``), installed by `FlueServer.serve` |
/// | `REQUEST_BODY_LIMIT` | 1048576 | largest accepted request body in bytes (413 above) |
/// | `RUN_LEASE_SECONDS` | 30 | a run whose process sent no heartbeat for this long is orphaned |
/// | `RECOVERY_SCAN_SECONDS` | 5 | how often orphaned runs and expired submission leases are looked for |
/// | `AGENT_REQUEST_BODY_LIMIT` | 33554432 | largest accepted agent prompt body in bytes (images are large) |
/// | `SUBMISSION_LEASE_SECONDS` | 30 | lease of a running agent submission; renewed every third of it |
/// | `AGENT_CONCURRENCY` | 32 | agent submissions this process runs at once (one per instance at most) |
/// | `APPROVAL_TIMEOUT_SECONDS` | 86400 | how long a tool call waits for a human decision before it is denied |
/// | `RETENTION_MAX_AGE_HOURS` | 168 | ended runs, settled submissions and idle agent streams older than this are removed; 0 keeps them |
/// | `RETENTION_MAX_RECORDS` | 1000 in memory, none on disk | ended runs and settled submissions kept at most (each); 0: no bound |
/// | `RETENTION_INTERVAL_SECONDS` | 60 | time between retention passes |
/// | `PUBLIC_URL` | — | the origin clients use (`https://api.example.com`); `streamUrl` and `Location` start with it |
///
/// Connection limits and timeouts (`REQUEST_HEAD_TIMEOUT_SECONDS`, `MAX_CONNECTIONS`, …) are listed
/// with their defaults in `docs/server.md`.
///
/// Provider variables (`MODEL_SPECIFIER`, `ANTHROPIC_API_KEY`, …) are read by `ProviderRegistry`.
/// `FLUE_MODE`, `FLUE_CLI_*` and `FLUE_INTERNAL_CLI_IPC` are reserved for Flue's own CLI: the server
/// refuses to start when they are set.
public struct FlueConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var logLevel: Logger.Level
    /// `LOG_FORMAT`: `text` (swift-log's default handler) or `json`.
    public var logFormat: LogFormat = .text

    public enum LogFormat: String, Sendable, Hashable {
        case text, json
    }
    /// Whether Flue's routes open a server span per request (Hummingbird's `TracingMiddleware`,
    /// continuing an incoming `traceparent`). On when the OpenTelemetry exporter is configured
    /// (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, unless
    /// `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`); spans go to the tracer the
    /// application bootstraps (`FlueOpenTelemetry.bootstrap()`).
    public var tracing = false
    /// `METRICS`: `off` (default) or `prometheus` (``FlueMetrics`` on `GET /metrics`).
    public var metrics: MetricsExport = .off

    public enum MetricsExport: String, Sendable, Hashable {
        case off, prometheus
    }
    /// Largest request body accepted, in bytes.
    public var requestBodyLimit: Int
    /// Adds `dev` guidance to error envelopes. Never enable in production.
    public var developmentMode: Bool
    /// How long a long-poll read waits for new events before answering 204.
    public var longPollTimeout: Duration
    /// Interval of SSE `: heartbeat` comments.
    public var sseHeartbeatInterval: Duration
    /// Largest agent prompt body accepted, in bytes (`{message, images}`; an image may carry up
    /// to 14 MiB of base64).
    public var agentRequestBodyLimit: Int
    /// How the engine runs work (leases, recovery, concurrency, shutdown grace).
    public var engine: EngineConfiguration
    /// The kernel send buffer of each connection (`SO_SNDBUF`, bytes; `nil` keeps the system's
    /// autotuning): what a reader that stops reading can hold in the kernel.
    public var sendBufferBytes: Int? = 262_144
    /// How often a connection that stays unwritable (its send buffer full, NIO's buffer above its
    /// high watermark) is checked for progress; one whose reader took nothing since the last check is
    /// reset, and the reader resumes from its last offset.
    public var writeStallTimeout: Duration = .seconds(30)
    /// The most bytes one read sends at once (a catch-up body, a long-poll body, an SSE `data`
    /// frame with its framing); at least one event is always sent, and an event larger than this
    /// is written in slices of this size. At least 1024.
    public var readBatchBytes: Int = 64 * 1024
    /// How long a client has to send a complete request head, counted from the connection's accept
    /// (first request) or from the first byte of the next request (keep-alive). A partial head is
    /// answered `408` and the connection closed; a connection that sent nothing is closed.
    public var requestHeadTimeout: Duration = .seconds(20)
    /// The longest pause allowed while a request body arrives (from the head to the first part,
    /// and between parts); then the connection is closed. No minimum rate: a slow upload that keeps
    /// sending is never cut (`maxConnections` bounds how many such connections there can be).
    public var requestBodyTimeout: Duration = .seconds(60)
    /// How long a connection may sit idle between requests before the server closes it. Behind a
    /// load balancer keep it above the balancer's idle timeout, so the balancer closes first (AWS's
    /// guidance for ALB targets). Responses in progress (SSE, long-poll, `?wait=result`) are not idle.
    public var keepAliveTimeout: Duration = .seconds(75)
    /// Connections served at once. A connection beyond it is still accepted and answers its request
    /// `503` (except the health check path), so the server stays reachable and says why; beyond
    /// `maxConnections + connectionOverflow` new connections wait in the listen backlog.
    public var maxConnections: Int = FlueConfiguration.defaultMaxConnections()
    /// Connections accepted beyond `maxConnections` only to answer `503` or the health check.
    public var connectionOverflow: Int = 64
    /// The request path answered normally on a connection beyond `maxConnections`.
    public var healthCheckPath: String = "/health"
    /// The origin clients reach this server at (`https://api.example.com`, `PUBLIC_URL`): the
    /// `streamUrl` and `Location` URLs the server writes start with it. Without it they use the
    /// request's `Host` and `https` when the balancer in front says so (`X-Forwarded-Proto: https`),
    /// else `http`.
    public var publicURL: String?
    /// Live reads (long-poll and SSE) served at once, over all streams; beyond it `503`.
    public var maxLiveReads: Int = 3072
    /// Live reads of one stream served at once; beyond it `503`.
    public var maxLiveReadsPerStream: Int = 256
    /// Pending connections the kernel queues while the server is not accepting (`listen(2)` backlog;
    /// Linux clamps it to `net.core.somaxconn`).
    public var listenBacklog: Int = 256
    /// `Retry-After` (seconds) sent with a `503` for an exceeded limit.
    public var overloadRetryAfterSeconds: Int = 2

    public init(
        host: String = "0.0.0.0", port: Int = 3000, logLevel: Logger.Level = .info,
        requestBodyLimit: Int = 1 << 20, developmentMode: Bool = false, longPollTimeout: Duration = .seconds(30),
        sseHeartbeatInterval: Duration = .seconds(15), agentRequestBodyLimit: Int = 32 << 20,
        engine: EngineConfiguration = EngineConfiguration()
    ) {
        self.host = host
        self.port = port
        self.logLevel = logLevel
        self.requestBodyLimit = requestBodyLimit
        self.developmentMode = developmentMode
        self.longPollTimeout = longPollTimeout
        self.sseHeartbeatInterval = sseHeartbeatInterval
        self.agentRequestBodyLimit = agentRequestBodyLimit
        self.engine = engine
    }

    /// Variables reserved for Flue's CLI; a server started with any of them set refuses to run.
    public static let reservedVariablePrefixes = ["FLUE_MODE", "FLUE_CLI_", "FLUE_INTERNAL_CLI_IPC"]

    /// Reads the configuration; throws ``ConfigurationError`` naming the variable on bad values
    /// or reserved variables.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> FlueConfiguration {
        let reserved = environment.keys.filter { key in
            reservedVariablePrefixes.contains { key == $0 || (key.hasPrefix($0) && $0.hasSuffix("_")) }
        }.sorted()
        if !reserved.isEmpty {
            throw ConfigurationError(
                variable: reserved[0],
                message: "\(reserved.joined(separator: ", ")) \(reserved.count == 1 ? "is" : "are") reserved for the Flue CLI; "
                    + "unset \(reserved.count == 1 ? "it" : "them") before starting the server")
        }
        var configuration = FlueConfiguration()
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        if let port = value("PORT") {
            guard let number = Int(port), (0...65535).contains(number) else {
                throw ConfigurationError(variable: "PORT", message: "PORT must be a number from 0 to 65535, got \"\(port)\"")
            }
            configuration.port = number
        }
        if let host = value("HOST") { configuration.host = host }
        if let format = value("LOG_FORMAT") {
            guard let parsed = LogFormat(rawValue: format.lowercased()) else {
                throw ConfigurationError(variable: "LOG_FORMAT", message: "LOG_FORMAT must be text or json, got \"\(format)\"")
            }
            configuration.logFormat = parsed
        }
        configuration.tracing = GenAITracing.exportConfigured(environment)
        if let export = value("METRICS") {
            guard let parsed = MetricsExport(rawValue: export.lowercased()) else {
                throw ConfigurationError(variable: "METRICS", message: "METRICS must be off or prometheus, got \"\(export)\"")
            }
            configuration.metrics = parsed
        }
        if let level = value("LOG_LEVEL") {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                throw ConfigurationError(
                    variable: "LOG_LEVEL",
                    message: "LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical; got \"\(level)\"")
            }
            configuration.logLevel = parsed
        }
        if let bytes = try count("REQUEST_BODY_LIMIT", at: value, in: 1...Int.max, unit: "bytes") {
            configuration.requestBodyLimit = bytes
        }
        if let seconds = try seconds("RUN_LEASE_SECONDS", at: value, atLeast: 1, "1") {
            configuration.engine.runLease = seconds
            configuration.engine.runHeartbeatInterval = seconds / 3
        }
        if let seconds = try seconds("RECOVERY_SCAN_SECONDS", at: value, atLeast: 0.001, "0.001") {
            configuration.engine.recoveryScanInterval = seconds
        }
        if let seconds = try seconds("LONG_POLL_TIMEOUT_SECONDS", at: value, atLeast: 0.1, "0.1") {
            configuration.longPollTimeout = seconds
        }
        if let bytes = try count("AGENT_REQUEST_BODY_LIMIT", at: value, in: 1...Int.max, unit: "bytes") {
            configuration.agentRequestBodyLimit = bytes
        }
        if let seconds = try seconds("WRITE_STALL_TIMEOUT_SECONDS", at: value, atLeast: 0.1, "0.1") {
            configuration.writeStallTimeout = seconds
        }
        if let bytes = value("SEND_BUFFER_BYTES") {
            guard let count = Int(bytes), count == 0 || (4096...(64 << 20)).contains(count) else {
                throw ConfigurationError(
                    variable: "SEND_BUFFER_BYTES",
                    message: "SEND_BUFFER_BYTES must be 0 (system default) or 4096 to 67108864 bytes, got \"\(bytes)\"")
            }
            configuration.sendBufferBytes = count == 0 ? nil : count
        }
        if let seconds = try seconds("REQUEST_HEAD_TIMEOUT_SECONDS", at: value, atLeast: 0.1, "0.1") {
            configuration.requestHeadTimeout = seconds
        }
        if let seconds = try seconds("REQUEST_BODY_TIMEOUT_SECONDS", at: value, atLeast: 0.1, "0.1") {
            configuration.requestBodyTimeout = seconds
        }
        if let seconds = try seconds("KEEP_ALIVE_TIMEOUT_SECONDS", at: value, atLeast: 0.1, "0.1") {
            configuration.keepAliveTimeout = seconds
        }
        if let count = try count("MAX_CONNECTIONS", at: value, in: 1...1_000_000) { configuration.maxConnections = count }
        if let count = try count("MAX_LIVE_READS", at: value, in: 1...1_000_000) { configuration.maxLiveReads = count }
        if let count = try count("MAX_LIVE_READS_PER_STREAM", at: value, in: 1...1_000_000) {
            configuration.maxLiveReadsPerStream = count
        }
        if let count = try count("LISTEN_BACKLOG", at: value, in: 1...65535) { configuration.listenBacklog = count }
        if let path = value("HEALTH_CHECK_PATH") {
            guard path.hasPrefix("/"), !path.contains("?") else {
                throw ConfigurationError(
                    variable: "HEALTH_CHECK_PATH", message: "HEALTH_CHECK_PATH must be a path starting with /, got \"\(path)\"")
            }
            configuration.healthCheckPath = path
        }
        if let url = value("PUBLIC_URL") {
            guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), ["http", "https"].contains(scheme),
                let host = parsed.host, !host.isEmpty, parsed.path.isEmpty || parsed.path == "/", parsed.query == nil,
                parsed.user == nil
            else {
                throw ConfigurationError(
                    variable: "PUBLIC_URL",
                    message: "PUBLIC_URL must be an origin such as https://api.example.com (no path or query), got \"\(url)\"")
            }
            configuration.publicURL = scheme + "://" + host + (parsed.port.map { ":\($0)" } ?? "")
        }
        if let seconds = try seconds("SUBMISSION_LEASE_SECONDS", at: value, atLeast: 1, "1") {
            configuration.engine.submissionLease = seconds
            configuration.engine.submissionLeaseRenewal = seconds / 3
        }
        if let count = try count("AGENT_CONCURRENCY", at: value, in: 1...Int.max) { configuration.engine.agentConcurrency = count }
        if let seconds = try seconds("APPROVAL_TIMEOUT_SECONDS", at: value, atLeast: 1, "1") {
            configuration.engine.approvalTimeout = seconds
        }
        if let hours = try duration(
            "RETENTION_MAX_AGE_HOURS", at: value, unit: ("hours", 3600), from: (0, "0 (keep forever)"), to: 87_600)
        {
            configuration.engine.retention.maxAge = hours == .zero ? nil : hours
        }
        if let count = try count("RETENTION_MAX_RECORDS", at: value, in: 0...Int.max) {
            configuration.engine.retention.maxRecords = count
        }
        if let seconds = try seconds("RETENTION_INTERVAL_SECONDS", at: value, atLeast: 0.1, "0.1") {
            configuration.engine.retention.interval = seconds
        }
        return configuration
    }

    /// A whole-number variable within `range`.
    private static func count(
        _ variable: String, at value: (String) -> String?, in range: ClosedRange<Int>, unit: String? = nil
    ) throws -> Int? {
        guard let text = value(variable) else { return nil }
        guard let number = Int(text), range.contains(number) else {
            let allowed = range.upperBound == .max ? "≥ \(range.lowerBound)" : "from \(range.lowerBound) to \(range.upperBound)"
            let what = unit.map { "a whole number of \($0)" } ?? "a whole number"
            throw ConfigurationError(variable: variable, message: "\(variable) must be \(what) \(allowed), got \"\(text)\"")
        }
        return number
    }

    /// 4096, or less when the process may not open that many files: three quarters of the soft
    /// `RLIMIT_NOFILE` minus 64 (the rest is left for the store, logs and the overflow band), at least 16.
    public static func defaultMaxConnections() -> Int {
        var limit = rlimit()
        #if os(Linux)
        let status = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        #else
        let status = getrlimit(RLIMIT_NOFILE, &limit)
        #endif
        guard status == 0 else { return 4096 }
        // RLIM_INFINITY is the largest value; anything past Int32.max is as good as unlimited.
        let files = limit.rlim_cur > rlim_t(Int32.max) ? Int(Int32.max) : Int(limit.rlim_cur)
        return max(16, min(4096, files / 4 * 3 - 64))
    }

    /// A duration variable in seconds (fractions allowed) between `minimum` and one day, checked as a
    /// `Double` before any integer conversion, so no value can trap.
    private static func seconds(
        _ variable: String, at value: (String) -> String?, atLeast minimum: Double, _ minimumText: String
    ) throws -> Duration? {
        try duration(variable, at: value, unit: ("seconds", 1), from: (minimum, minimumText), to: 86_400)
    }

    /// A duration variable in `unit`s (fractions allowed) within `from...to`, checked as a
    /// `Double` before any integer conversion, so no value can trap.
    private static func duration(
        _ variable: String, at value: (String) -> String?, unit: (name: String, seconds: Double),
        from minimum: (value: Double, text: String), to maximum: Double
    ) throws -> Duration? {
        guard let text = value(variable) else { return nil }
        guard let amount = Double(text), amount >= minimum.value, amount <= maximum else {
            throw ConfigurationError(
                variable: variable,
                message: "\(variable) must be a number of \(unit.name) from \(minimum.text) to \(Int(maximum)), got \"\(text)\"")
        }
        return .milliseconds(Int64(amount * unit.seconds * 1000))
    }
}

/// A setting that prevents the server from starting.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// The environment variable at fault.
    public var variable: String
    public var message: String
    public var description: String { "configuration error: \(message)" }

    public init(variable: String, message: String) {
        self.variable = variable
        self.message = message
    }
}
