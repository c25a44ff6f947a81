/// How much a model can read and write: what compaction needs to know when to summarise.
public struct ModelLimits: Sendable, Hashable, Codable {
    /// Tokens the model reads per request (system prompt, tools and conversation together).
    public var contextWindow: Int
    /// Tokens the model may write in one response.
    public var maxOutputTokens: Int

    public init(contextWindow: Int, maxOutputTokens: Int) {
        self.contextWindow = contextWindow
        self.maxOutputTokens = maxOutputTokens
    }
}

/// The limits of the Anthropic and OpenAI models the docs name, by provider model id. A model
/// it does not know (a gateway's, a local one, a newer one) has no threshold compaction unless
/// the agent states its window (``CompactionPolicy/contextWindow``); a provider "context too
/// long" error still compacts it.
///
/// Sources, read 2026-12: Anthropic's model overview pages (platform.claude.com/docs/models)
/// and OpenAI's model pages (platform.openai.com/docs/models).
public enum ModelCatalog {
    /// Model id → limits. Ids are matched exactly, then by the longest known prefix, so a dated
    /// snapshot (`claude-haiku-4-5-20251001`, `gpt-4.1-2025-04-14`) finds its family.
    public static let known: [String: ModelLimits] = [
        "claude-sonnet-4-6": ModelLimits(contextWindow: 1_000_000, maxOutputTokens: 128_000),
        "claude-sonnet-4-5": ModelLimits(contextWindow: 200_000, maxOutputTokens: 64_000),
        "claude-haiku-4-5": ModelLimits(contextWindow: 200_000, maxOutputTokens: 64_000),
        "claude-opus-4-1": ModelLimits(contextWindow: 200_000, maxOutputTokens: 32_000),
        "gpt-4.1": ModelLimits(contextWindow: 1_047_576, maxOutputTokens: 32_768),
        "gpt-4.1-mini": ModelLimits(contextWindow: 1_047_576, maxOutputTokens: 32_768),
        "gpt-4o": ModelLimits(contextWindow: 128_000, maxOutputTokens: 16_384),
        "gpt-4o-mini": ModelLimits(contextWindow: 128_000, maxOutputTokens: 16_384),
    ]

    /// The limits of `model`, or `nil` when the catalog does not know it.
    public static func limits(for model: ModelSpecifier) -> ModelLimits? {
        if let exact = known[model.model] { return exact }
        let family = known.keys.filter { model.model.hasPrefix($0 + "-") }.max { $0.count < $1.count }
        return family.flatMap { known[$0] }
    }
}
