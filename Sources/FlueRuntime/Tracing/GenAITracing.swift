import Synchronization
import Tracing

/// Span names and attributes of the OpenTelemetry GenAI semantic conventions
/// (opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans), and Flue's own (`flue.*`).
///
/// Spans go to swift-distributed-tracing's `InstrumentationSystem.tracer` (a no-op unless the
/// application bootstraps one, e.g. `FlueOpenTelemetry.bootstrap()`): `chat {model}` for each
/// model turn (compaction summaries included), `execute_tool {tool}` for each tool call; the engine adds `workflow {name}` for a
/// run and `invoke_agent {agent}` for a submission attempt.
public enum GenAITracing {
    public enum Attribute {
        public static let operationName = "gen_ai.operation.name"
        public static let providerName = "gen_ai.provider.name"
        public static let requestModel = "gen_ai.request.model"
        public static let requestMaxTokens = "gen_ai.request.max_tokens"
        public static let responseFinishReasons = "gen_ai.response.finish_reasons"
        public static let inputTokens = "gen_ai.usage.input_tokens"
        public static let outputTokens = "gen_ai.usage.output_tokens"
        public static let cacheReadInputTokens = "gen_ai.usage.cache_read.input_tokens"
        public static let cacheCreationInputTokens = "gen_ai.usage.cache_creation.input_tokens"
        public static let toolName = "gen_ai.tool.name"
        public static let toolCallId = "gen_ai.tool.call.id"
        public static let toolCallArguments = "gen_ai.tool.call.arguments"
        public static let toolCallResult = "gen_ai.tool.call.result"
        public static let agentName = "gen_ai.agent.name"
        public static let conversationId = "gen_ai.conversation.id"
        public static let errorType = "error.type"
        /// Flue's: US dollars of a turn (`usage.cost.total`).
        public static let cost = "flue.usage.cost"
    }

    private static let contentRecording = Atomic<Bool>(false)

    /// Whether `environment` configures OpenTelemetry trace export: `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` set, and neither `OTEL_SDK_DISABLED=true` nor
    /// `OTEL_TRACES_EXPORTER=none` (the OpenTelemetry SDK environment specification).
    public static func exportConfigured(_ environment: [String: String]) -> Bool {
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        return (value("OTEL_EXPORTER_OTLP_ENDPOINT") != nil || value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != nil)
            && value("OTEL_SDK_DISABLED")?.lowercased() != "true" && value("OTEL_TRACES_EXPORTER")?.lowercased() != "none"
    }

    /// Runs one model call in a `chat {model}` client span with the request attributes; failures
    /// mark the span.
    static func withChatSpan<T>(
        _ model: ModelSpecifier, maxOutputTokens: Int, _ body: (any Span) async throws -> T
    ) async throws -> T {
        try await withSpan("chat \(model.model)", ofKind: .client) { span in
            span.attributes[Attribute.operationName] = "chat"
            span.attributes[Attribute.providerName] = model.provider
            span.attributes[Attribute.requestModel] = model.model
            span.attributes[Attribute.requestMaxTokens] = maxOutputTokens
            do {
                return try await body(span)
            } catch {
                fail(span, error)
                throw error
            }
        }
    }

    /// The response attributes of a chat span: token usage (input counts cache reads and
    /// writes, as the conventions ask), finish reason and cost.
    static func recordResponse(_ span: any Span, _ message: AssistantMessage) {
        let usage = message.usage
        span.attributes[Attribute.inputTokens] = Usage.saturatingSum(usage.input, Usage.saturatingSum(usage.cacheRead, usage.cacheWrite))
        span.attributes[Attribute.outputTokens] = usage.output
        span.attributes[Attribute.cacheReadInputTokens] = usage.cacheRead
        span.attributes[Attribute.cacheCreationInputTokens] = usage.cacheWrite
        span.attributes[Attribute.responseFinishReasons] = [message.stopReason.rawValue]
        if let cost = usage.cost?.total { span.attributes[Attribute.cost] = cost }
    }

    /// Whether spans carry message contents (tool arguments and results). Off by default:
    /// contents may hold personal data. `FlueOpenTelemetry.bootstrap` turns it on when
    /// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` is `true`.
    public static var recordsContent: Bool {
        get { contentRecording.load(ordering: .relaxed) }
        set { contentRecording.store(newValue, ordering: .relaxed) }
    }

    /// Marks `span` failed with `error`'s type (a `FlueError`'s kind, else the Swift type name);
    /// `withSpan` records the error itself when it is rethrown.
    public static func fail(_ span: any Span, _ error: any Error) {
        span.attributes[Attribute.errorType] = (error as? FlueError)?.kind.rawValue ?? String(describing: type(of: error))
        span.setStatus(SpanStatus(code: .error))
    }
}
