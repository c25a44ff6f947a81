import CoreMetrics
import FlueEngine
import FluePersistence
import FlueRuntime
import Foundation
import Hummingbird
import Prometheus
import Synchronization

/// One server's metrics in Prometheus' text format (`METRICS=prometheus`, `GET /metrics`).
///
/// Names follow the OpenTelemetry semantic conventions where one exists (HTTP server, GenAI
/// client), written the Prometheus way (`_total`, `_seconds`):
///
/// | series | kind | labels |
/// | --- | --- | --- |
/// | `http_server_requests_total` | counter | `http_route`, `http_request_method`, `http_response_status_code` |
/// | `http_server_request_duration_seconds` | histogram | `http_route`, `http_request_method` |
/// | `flue_workflow_runs_total` | counter | `workflow`, `outcome` (`completed`, `errored`, `aborted`) |
/// | `flue_workflow_runs_running` | gauge | — (this process) |
/// | `flue_workflow_runs_orphaned_total` | counter | — (runs of dead processes this process ended) |
/// | `flue_agent_submissions_total` | counter | `agent`, `outcome` (`completed`, `failed`, `aborted`) |
/// | `flue_agent_submissions_running` | gauge | — (attempts in this process) |
/// | `flue_agent_submissions_open` | gauge | `status` (`queued`, `running`, `awaiting_approval`; the whole store) |
/// | `flue_agent_submission_recoveries_total` | counter | `decision` (`requeue`, `complete`, `fail`, `resume`, `abort`) |
/// | `gen_ai_client_operation_duration_seconds` | histogram | `gen_ai_provider_name`, `gen_ai_request_model`, `error_type` |
/// | `gen_ai_client_token_usage_total` | counter | `gen_ai_provider_name`, `gen_ai_request_model`, `gen_ai_token_type` (`input`, `output`, `cache_read`, `cache_write`) |
/// | `flue_model_errors_total` | counter | `gen_ai_provider_name`, `gen_ai_request_model`, `error_type` |
/// | `flue_model_cost_usd_total` | counter | `gen_ai_provider_name`, `gen_ai_request_model` |
/// | `flue_tool_calls_total` | counter | `tool`, `outcome` (`ok`, `error`) |
///
/// Each server has its own registry, so two servers in one process (tests) never mix their series.
/// Label values that come from outside the code (a tool name the model made up, a model id) are
/// bounded: beyond ``maxValuesPerLabel`` distinct values per label, new ones count as `other`.
public final class FlueMetrics: Sendable {
    /// Distinct values a label takes before new ones are reported as `other`.
    public static let maxValuesPerLabel = 200
    private let labelValues = Mutex<[String: Set<String>]>([:])
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry
    /// A swift-metrics factory over ``registry``.
    public let factory: PrometheusMetricsFactory

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        self.factory = PrometheusMetricsFactory(registry: registry)
    }

    /// `value`, or `other` once `label` has ``maxValuesPerLabel`` other values.
    private func bounded(_ label: String, _ value: String) -> String {
        labelValues.withLock { values in
            if values[label, default: []].contains(value) { return value }
            guard values[label, default: []].count < Self.maxValuesPerLabel else { return "other" }
            values[label, default: []].insert(value)
            return value
        }
    }

    private func count(_ label: String, _ dimensions: [(String, String)], by amount: Int = 1) {
        guard amount > 0 else { return }
        Counter(label: label, dimensions: dimensions, factory: factory).increment(by: amount)
    }

    /// Records what an engine event says: outcomes, model turns, tokens, cost, tool calls.
    public func record(_ observed: ObservedEvent) {
        switch observed.event.body {
        case .runEnd(let end):
            guard case .run(_, let workflow) = observed.source else { return }
            let outcome = end.isError ? (end.error?["type"] == "aborted" ? "aborted" : "errored") : "completed"
            count("flue_workflow_runs_total", [("workflow", bounded("workflow", workflow)), ("outcome", outcome)])
        case .submissionSettled(let settled):
            guard case .instance(let agent, _) = observed.source else { return }
            count("flue_agent_submissions_total", [("agent", bounded("agent", agent)), ("outcome", settled.outcome.rawValue)])
        case .turn(let turn):
            let model = ModelLabels(turn.model, bounded)
            var timed = model.dimensions
            timed.append(("error_type", turn.isError ? bounded("error_type", turn.error?["type"]?.stringValue ?? "error") : ""))
            Timer(label: "gen_ai_client_operation_duration_seconds", dimensions: timed, factory: factory)
                .recordMilliseconds(max(0, turn.durationMs))
            if turn.isError {
                count("flue_model_errors_total", timed)
            }
            for (kind, tokens) in [
                ("input", turn.usage.input), ("output", turn.usage.output), ("cache_read", turn.usage.cacheRead),
                ("cache_write", turn.usage.cacheWrite),
            ] {
                count("gen_ai_client_token_usage_total", model.dimensions + [("gen_ai_token_type", kind)], by: tokens)
            }
            if let cost = turn.usage.cost?.total, cost > 0, cost.isFinite {
                FloatingPointCounter(label: "flue_model_cost_usd_total", dimensions: model.dimensions, factory: factory)
                    .increment(by: cost)
            }
        case .tool(let tool):
            count("flue_tool_calls_total", [("tool", bounded("tool", tool.toolName)), ("outcome", tool.isError ? "error" : "ok")])
        default:
            break
        }
    }

    /// Provider and model of a turn's `model` (`provider/model`).
    private struct ModelLabels {
        var dimensions: [(String, String)]
        init(_ specifier: String, _ bounded: (String, String) -> String) {
            let parts = specifier.split(separator: "/", maxSplits: 1)
            let provider = parts.count == 2 ? String(parts[0]) : "unknown"
            let model = parts.count == 2 ? String(parts[1]) : specifier
            dimensions = [
                ("gen_ai_provider_name", bounded("gen_ai_provider_name", provider)),
                ("gen_ai_request_model", bounded("gen_ai_request_model", model)),
            ]
        }
    }

    /// Records one HTTP request, when its response was written.
    func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        count(
            "http_server_requests_total",
            [("http_route", route), ("http_request_method", method), ("http_response_status_code", String(status))])
        Timer(
            label: "http_server_request_duration_seconds", dimensions: [("http_route", route), ("http_request_method", method)],
            factory: factory
        ).recordNanoseconds(max(0, duration.components.seconds) * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }

    /// The text exposition, with the gauges sampled now: runs and submissions in this process,
    /// and the store's open submissions (a failed store read leaves those at their last value).
    public func render(engine: Engine) async -> String {
        Gauge(label: "flue_workflow_runs_running", factory: factory).record(engine.runningCount)
        Gauge(label: "flue_agent_submissions_running", factory: factory).record(engine.runningSubmissionCount)
        if let counts = try? await engine.stores.submissions.openCounts() {
            for status in [SubmissionStatus.queued, .running, .awaitingApproval] {
                Gauge(label: "flue_agent_submissions_open", dimensions: [("status", status.rawValue)], factory: factory)
                    .record(counts[status] ?? 0)
            }
        }
        return registry.emitToString()
    }
}

/// Counts every request the routes it wraps answer, by route template, method and status, and
/// times it until its response body was written (an SSE read counts its whole length).
struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: FlueMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let started = ContinuousClock.now
        let method = request.method.rawValue
        do {
            var response = try await next(request, context)
            let status = Int(response.status.code)
            let route = context.endpointPath ?? "unmatched"
            let body = response.body
            let metrics = self.metrics
            // Recorded once the body was written (or its writing failed), as Hummingbird's own
            // MetricsMiddleware does; that middleware reports to the global metrics system only.
            response.body = ResponseBody(contentLength: body.contentLength) { writer in
                defer {
                    metrics.recordRequest(route: route, method: method, status: status, duration: ContinuousClock.now - started)
                }
                try await body.write(writer)
            }
            return response
        } catch {
            let status = (error as? any HTTPResponseError).map { Int($0.status.code) } ?? 500
            metrics.recordRequest(
                route: context.endpointPath ?? "unmatched", method: method, status: status, duration: ContinuousClock.now - started)
            throw error
        }
    }
}
