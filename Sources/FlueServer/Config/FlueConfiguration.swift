import FlueRuntime
import Foundation
import Logging

/// Server settings, read from the environment at start (SPEC §8).
///
/// | variable | default | meaning |
/// | --- | --- | --- |
/// | `PORT` | 3000 | listen port |
/// | `HOST` | `0.0.0.0` | bind address |
/// | `LOG_LEVEL` | `info` | `trace` … `critical` |
/// | `REQUEST_BODY_LIMIT` | 1048576 | largest accepted request body in bytes (413 above) |
/// | `RUN_LEASE_SECONDS` | 30 | a run whose process sent no heartbeat for this long is orphaned |
/// | `RECOVERY_SCAN_SECONDS` | 5 | how often orphaned runs and expired submission leases are looked for |
/// | `AGENT_REQUEST_BODY_LIMIT` | 33554432 | largest accepted agent prompt body in bytes (images are large) |
/// | `SUBMISSION_LEASE_SECONDS` | 30 | lease of a running agent submission; renewed every third of it |
/// | `AGENT_CONCURRENCY` | 32 | agent submissions this process runs at once (one per instance at most) |
///
/// Provider variables (`MODEL_SPECIFIER`, `ANTHROPIC_API_KEY`, …) are read by `ProviderRegistry`.
/// `FLUE_MODE`, `FLUE_CLI_*` and `FLUE_INTERNAL_CLI_IPC` are reserved for Flue's own CLI: the server
/// refuses to start when they are set.
public struct FlueConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var logLevel: Logger.Level
    /// Largest request body accepted, in bytes.
    public var requestBodyLimit: Int
    /// Adds `dev` guidance to error envelopes. Never enable in production.
    public var developmentMode: Bool
    /// How long shutdown waits for running workflows before giving up on them.
    public var shutdownGracePeriod: Duration
    /// How long a long-poll read waits for new events before answering 204.
    public var longPollTimeout: Duration
    /// Interval of SSE `: heartbeat` comments.
    public var sseHeartbeatInterval: Duration
    /// A run whose owner has not sent a heartbeat for this long is considered orphaned.
    public var runLease: Duration
    /// How often the owner renews its runs' heartbeats.
    public var runHeartbeatInterval: Duration
    /// How often orphaned runs and expired submission leases are looked for (also once at start).
    public var recoveryScanInterval: Duration
    /// Largest agent prompt body accepted, in bytes (`{message, images}`; an image may carry up
    /// to 14 MiB of base64).
    public var agentRequestBodyLimit: Int
    /// How long a running agent submission stays claimed without a renewal.
    public var submissionLease: Duration
    /// How often the owner renews its submission leases.
    public var submissionLeaseRenewal: Duration
    /// Agent submissions this process runs at once.
    public var agentConcurrency: Int
    /// Attempts (the first included) before a submission fails as exhausted.
    public var submissionMaxAttempts: Int
    /// How long after its first start a submission may still begin a model turn.
    public var submissionTimeout: Duration
    /// How often streamed model output is saved as a stream-chunk segment.
    public var streamChunkInterval: Duration
    /// How often the claim loop looks for queued work admitted by other processes.
    public var claimPollInterval: Duration
    /// The kernel send buffer of each connection (`SO_SNDBUF`, bytes; `nil` keeps the system's
    /// autotuning): what a reader that stops reading can hold in the kernel.
    public var sendBufferBytes: Int? = 262_144
    /// A connection that stays unwritable this long (its send buffer full, NIO's buffer above its
    /// high watermark) is closed; the reader resumes from its last offset.
    public var writeStallTimeout: Duration = .seconds(30)
    /// The most bytes of events one read sends at once (a catch-up body, a long-poll body, an SSE
    /// `data` frame); at least one event is always sent.
    public var readBatchBytes: Int = 128 * 1024

    public init(
        host: String = "0.0.0.0", port: Int = 3000, logLevel: Logger.Level = .info,
        requestBodyLimit: Int = 1 << 20, developmentMode: Bool = false, shutdownGracePeriod: Duration = .seconds(30),
        longPollTimeout: Duration = .seconds(30), sseHeartbeatInterval: Duration = .seconds(15),
        runLease: Duration = .seconds(30), runHeartbeatInterval: Duration = .seconds(10),
        recoveryScanInterval: Duration = .seconds(5), agentRequestBodyLimit: Int = 32 << 20,
        submissionLease: Duration = .seconds(30), submissionLeaseRenewal: Duration = .seconds(10),
        agentConcurrency: Int = 32, submissionMaxAttempts: Int = 10, submissionTimeout: Duration = .seconds(3600),
        streamChunkInterval: Duration = .milliseconds(500), claimPollInterval: Duration = .seconds(1)
    ) {
        self.agentRequestBodyLimit = agentRequestBodyLimit
        self.submissionLease = submissionLease
        self.submissionLeaseRenewal = submissionLeaseRenewal
        self.agentConcurrency = agentConcurrency
        self.submissionMaxAttempts = submissionMaxAttempts
        self.submissionTimeout = submissionTimeout
        self.streamChunkInterval = streamChunkInterval
        self.claimPollInterval = claimPollInterval
        self.runLease = runLease
        self.runHeartbeatInterval = runHeartbeatInterval
        self.recoveryScanInterval = recoveryScanInterval
        self.host = host
        self.port = port
        self.logLevel = logLevel
        self.requestBodyLimit = requestBodyLimit
        self.developmentMode = developmentMode
        self.shutdownGracePeriod = shutdownGracePeriod
        self.longPollTimeout = longPollTimeout
        self.sseHeartbeatInterval = sseHeartbeatInterval
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
        if let level = value("LOG_LEVEL") {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                throw ConfigurationError(
                    variable: "LOG_LEVEL",
                    message: "LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical; got \"\(level)\"")
            }
            configuration.logLevel = parsed
        }
        if let limit = value("REQUEST_BODY_LIMIT") {
            guard let bytes = Int(limit), bytes > 0 else {
                throw ConfigurationError(
                    variable: "REQUEST_BODY_LIMIT", message: "REQUEST_BODY_LIMIT must be a positive number of bytes, got \"\(limit)\"")
            }
            configuration.requestBodyLimit = bytes
        }
        if let seconds = try seconds("RUN_LEASE_SECONDS", at: value, atLeast: 1, "1") {
            configuration.runLease = seconds
            configuration.runHeartbeatInterval = seconds / 3
        }
        if let seconds = try seconds("RECOVERY_SCAN_SECONDS", at: value, atLeast: 0.001, "0.001") {
            configuration.recoveryScanInterval = seconds
        }
        if let seconds = try seconds("LONG_POLL_TIMEOUT_SECONDS", at: value, atLeast: 0.1, "0.1") {
            configuration.longPollTimeout = seconds
        }
        if let limit = value("AGENT_REQUEST_BODY_LIMIT") {
            guard let bytes = Int(limit), bytes > 0 else {
                throw ConfigurationError(
                    variable: "AGENT_REQUEST_BODY_LIMIT",
                    message: "AGENT_REQUEST_BODY_LIMIT must be a positive number of bytes, got \"\(limit)\"")
            }
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
        if let seconds = try seconds("SUBMISSION_LEASE_SECONDS", at: value, atLeast: 1, "1") {
            configuration.submissionLease = seconds
            configuration.submissionLeaseRenewal = seconds / 3
        }
        if let concurrency = value("AGENT_CONCURRENCY") {
            guard let count = Int(concurrency), count >= 1 else {
                throw ConfigurationError(
                    variable: "AGENT_CONCURRENCY", message: "AGENT_CONCURRENCY must be a whole number ≥ 1, got \"\(concurrency)\"")
            }
            configuration.agentConcurrency = count
        }
        return configuration
    }

    /// A duration variable in seconds (fractions allowed) between `minimum` and one day, checked as a
    /// `Double` before any integer conversion, so no value can trap.
    private static func seconds(
        _ variable: String, at value: (String) -> String?, atLeast minimum: Double, _ minimumText: String
    ) throws -> Duration? {
        guard let text = value(variable) else { return nil }
        guard let seconds = Double(text), seconds >= minimum, seconds <= 86_400 else {
            throw ConfigurationError(
                variable: variable,
                message: "\(variable) must be a number of seconds from \(minimumText) to 86400, got \"\(text)\"")
        }
        return .milliseconds(Int64(seconds * 1000))
    }
}

/// A setting that prevents the server from starting.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// The environment variable at fault.
    public var variable: String
    public var message: String
    public var description: String { "configuration error: \(message)" }
}
