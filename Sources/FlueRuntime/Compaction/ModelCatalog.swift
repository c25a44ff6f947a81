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

    /// Provider model id → price in US dollars per million tokens (standard tier; cache writes
    /// at Anthropic's 5-minute rate; OpenAI bills no cache writes and reports none). Sources, read
    /// 2026-12: Anthropic's pricing page (claude.com/pricing) and OpenAI's (openai.com/api/pricing).
    /// Applications override or add prices with `ProviderRegistry(prices:)`.
    public static let prices: [String: ModelPrice] = [
        "claude-sonnet-4-6": ModelPrice(input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75),
        "claude-sonnet-4-5": ModelPrice(input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75),
        "claude-haiku-4-5": ModelPrice(input: 1, output: 5, cacheRead: 0.1, cacheWrite: 1.25),
        "claude-opus-4-1": ModelPrice(input: 15, output: 75, cacheRead: 1.5, cacheWrite: 18.75),
        "gpt-4.1": ModelPrice(input: 2, output: 8, cacheRead: 0.5),
        "gpt-4.1-mini": ModelPrice(input: 0.4, output: 1.6, cacheRead: 0.1),
        "gpt-4o": ModelPrice(input: 2.5, output: 10, cacheRead: 1.25),
        "gpt-4o-mini": ModelPrice(input: 0.15, output: 0.6, cacheRead: 0.075),
    ]

    /// The limits of `model`, or `nil` when the catalog does not know it.
    public static func limits(for model: ModelSpecifier) -> ModelLimits? { lookup(model, in: known) }

    /// The price of `model` (matched like ``limits(for:)``), or `nil` when the catalog does not
    /// know it. Only the `anthropic` and `openai` providers are priced: an OpenAI-compatible
    /// server of the same model id charges its own prices.
    public static func price(for model: ModelSpecifier) -> ModelPrice? {
        guard model.provider == "anthropic" || model.provider == "openai" else { return nil }
        return lookup(model, in: prices)
    }

    /// Exact id, then the longest known prefix followed by `-`.
    private static func lookup<Value>(_ model: ModelSpecifier, in table: [String: Value]) -> Value? {
        if let exact = table[model.model] { return exact }
        let family = table.keys.filter { model.model.hasPrefix($0 + "-") }.max { $0.count < $1.count }
        return family.flatMap { table[$0] }
    }
}
