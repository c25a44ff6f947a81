import Foundation
import Tracing

/// Trace context as propagation headers (W3C `traceparent`/`tracestate` with an OpenTelemetry
/// tracer), stored with runs and submissions so that the process that runs or recovers them can
/// continue or link to the trace of the request that started them.
enum TraceContext {
    private struct Carrier: Injector, Extractor {
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
        func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
    }

    /// The current task's trace context, or `nil` when there is none (no tracer, no span).
    static func current() -> [String: String]? {
        guard let context = ServiceContext.current else { return nil }
        var headers: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &headers, using: Carrier())
        return headers.isEmpty ? nil : headers
    }

    /// The context the stored headers describe (`nil` for none).
    static func context(_ headers: [String: String]?) -> ServiceContext? {
        guard let headers, !headers.isEmpty else { return nil }
        var context = ServiceContext.topLevel
        InstrumentationSystem.instrument.extract(headers, into: &context, using: Carrier())
        return context
    }

    /// Runs `body` in a span `name`: a child of `stored` when `continues`, else a new trace
    /// linked to `stored` (work resumed by another process, possibly long after the request).
    static func withSpan<T>(
        _ name: String, continuing stored: [String: String]?, continues: Bool,
        _ body: (any Span) async throws -> T
    ) async rethrows -> T {
        let origin = context(stored)
        let parent = continues ? (origin ?? ServiceContext.current ?? .topLevel) : .topLevel
        return try await Tracing.withSpan(name, context: parent, ofKind: .internal) { span in
            if !continues, let origin { span.addLink(SpanLink(context: origin, attributes: [:])) }
            return try await body(span)
        }
    }
}
