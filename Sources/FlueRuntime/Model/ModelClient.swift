/// A tool as the model sees it: name, description, parameter schema.
public struct ToolSpec: Sendable, Hashable, Codable {
    public var name: String
    public var description: String
    public var parameters: JSONSchema

    public init(name: String, description: String, parameters: JSONSchema) {
        self.name = name
        self.description = description
        self.parameters = parameters
    }
}

/// How much the model should reason before answering, where the model supports it.
public enum ThinkingLevel: String, Sendable, Hashable, Codable, CaseIterable {
    case off, minimal, low, medium, high, xhigh
}

/// One model call: everything a provider needs to produce the next assistant message.
public struct ModelRequest: Sendable, Hashable {
    public var model: ModelSpecifier
    public var systemPrompt: String
    public var messages: [Message]
    public var tools: [ToolSpec]
    public var thinking: ThinkingLevel
    public var maxOutputTokens: Int

    public init(
        model: ModelSpecifier, systemPrompt: String, messages: [Message], tools: [ToolSpec],
        thinking: ThinkingLevel = .off, maxOutputTokens: Int = 8192
    ) {
        self.model = model
        self.systemPrompt = systemPrompt
        self.messages = messages
        self.tools = tools
        self.thinking = thinking
        self.maxOutputTokens = maxOutputTokens
    }
}

/// A piece of streamed output, delivered while the model is still answering.
public enum ModelStreamDelta: Sendable, Hashable {
    case textDelta(String)
    case thinkingStart
    case thinkingDelta(String)
    case thinkingEnd
    /// A tool call began; its arguments stream as JSON fragments and are complete in the message.
    case toolCallStart(id: String, name: String)
}

/// Talks to one model API. Implementations live in `FlueProviders`; tests may supply others.
public protocol ModelClient: Sendable {
    /// Streams one model response: `onDelta` sees output as it arrives; the return value is the
    /// complete message. Throws ``FlueError`` (`model_request_failed`, `model_stream_interrupted`)
    /// on failure, and `CancellationError` when the calling task is cancelled.
    func complete(
        _ request: ModelRequest,
        onDelta: @Sendable (ModelStreamDelta) async -> Void
    ) async throws -> AssistantMessage
}

/// Resolves a model specifier to a client that can call it.
public protocol ModelResolver: Sendable {
    /// The client for `model`; throws `model_not_configured` / `provider_not_configured` /
    /// `missing_api_key` when it cannot be reached.
    func client(for model: ModelSpecifier) throws -> any ModelClient

    /// The model used when neither the call nor the agent names one (`MODEL_SPECIFIER`).
    var defaultModel: ModelSpecifier? { get }

    /// What `model` charges, or `nil` when unknown (turns of it then carry no `usage.cost`).
    /// Defaults to the catalog's price.
    func price(for model: ModelSpecifier) -> ModelPrice?
}
