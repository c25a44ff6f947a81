import FlueRuntime
import Foundation
import OTel
import ServiceLifecycle

/// Sends Flue's spans (HTTP requests, workflow runs, submission attempts, model turns, tool
/// calls; see `GenAITracing`) to an OpenTelemetry collector, configured by the standard `OTEL_*`
/// environment variables through swift-otel.
///
/// ```swift
/// let tracing = try FlueOpenTelemetry.bootstrap(serviceName: "my-agents")
/// try await FlueServer.serve(services: tracing.map { [$0] } ?? [], ...)
/// ```
///
/// On when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and
/// neither `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none`); off otherwise. Export is
/// OTLP over HTTP/protobuf (`OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`, the default); OTLP over
/// gRPC (`grpc`) needs the package built with its `OTLPGRPC` trait (`swift build --traits OTLPGRPC`,
/// or `traits: ["OTLPGRPC"]` on the dependency), which adds gRPC to the build. Only traces are
/// bootstrapped: logs stay with swift-log's handler and metrics with `METRICS=prometheus`.
/// Message contents (tool arguments and results) are recorded only with
/// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`.
public enum FlueOpenTelemetry {
    /// Whether `environment` configures trace export (the rule above).
    public static func isConfigured(_ environment: [String: String]) -> Bool { GenAITracing.exportConfigured(environment) }

    /// The protocols this build exports with.
    public static var supportedProtocols: [String] {
        // Not `http/json`: swift-otel writes trace and span ids in base64 there, which OTLP/JSON
        // receivers (ids in hex) reject.
        #if OTLPGRPC
        ["http/protobuf", "grpc"]
        #else
        ["http/protobuf"]
        #endif
    }

    /// Refuses a protocol this build cannot export with (swift-otel stops the process on gRPC
    /// without its trait) or does not know, naming the variable.
    static func checkProtocol(_ environment: [String: String]) throws {
        for variable in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
            guard let text = environment[variable]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { continue }
            guard supportedProtocols.contains(text.lowercased()) else {
                let hint = text.lowercased() == "grpc"
                    ? "; gRPC export needs the package built with its OTLPGRPC trait (swift build --traits OTLPGRPC)" : ""
                throw ConfigurationError(
                    variable: variable,
                    message: "\(variable) must be one of \(supportedProtocols.joined(separator: ", ")), got \"\(text)\"\(hint)")
            }
            return
        }
    }

    /// A trace-export setting that prevents the start.
    public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
        /// The environment variable at fault.
        public var variable: String
        public var message: String
        public var description: String { "configuration error: \(message)" }
    }

    /// Bootstraps swift-distributed-tracing with swift-otel's exporter when `environment`
    /// configures one, and returns the exporter's service for the application's service group
    /// (it flushes the last spans at shutdown); `nil` when tracing is off. Call once, before the
    /// first HTTP client is made (AsyncHTTPClient takes the tracer when a client is created), so
    /// model requests carry the trace. `OTEL_SERVICE_NAME` overrides `serviceName`. Throws
    /// ``ConfigurationError`` for a protocol this build cannot export with, and swift-otel's own
    /// configuration errors.
    public static func bootstrap(
        environment: [String: String] = ProcessInfo.processInfo.environment, serviceName: String
    ) throws -> (any Service)? {
        guard isConfigured(environment) else { return nil }
        try checkProtocol(environment)
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName
        configuration.traces.enabled = true
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        GenAITracing.recordsContent =
            environment["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"]?.lowercased() == "true"
        return try OTel.bootstrap(configuration: configuration, environment: environment)
    }
}
