import AsyncHTTPClient
import FlueRuntime
import Foundation
import Logging
import Synchronization

/// How to reach one provider id.
public struct ProviderConfiguration: Sendable {
    /// The wire protocol.
    public enum API: String, Sendable {
        /// Anthropic Messages (`/v1/messages`).
        case anthropicMessages = "anthropic-messages"
        /// OpenAI Chat Completions (`/chat/completions`), also spoken by compatible servers.
        case openAIChatCompletions = "openai-completions"
    }

    public var api: API
    /// API root: without `/v1` for Anthropic, with it for OpenAI-style servers.
    public var baseURL: String
    public var apiKey: String?
    /// When set and `apiKey` is nil, requests fail with `missing_api_key` naming this variable.
    public var apiKeyVariable: String?
    public var headers: [String: String]

    public init(
        api: API, baseURL: String, apiKey: String? = nil, apiKeyVariable: String? = nil,
        headers: [String: String] = [:]
    ) {
        self.api = api
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.apiKeyVariable = apiKeyVariable
        self.headers = headers
    }

    /// An OpenAI-compatible server (vLLM, Ollama, llama.cpp, a gateway) at `baseURL`.
    public static func openAICompatible(
        baseURL: String, apiKey: String? = nil, headers: [String: String] = [:]
    ) -> ProviderConfiguration {
        ProviderConfiguration(api: .openAIChatCompletions, baseURL: baseURL, apiKey: apiKey, headers: headers)
    }
}

/// Resolves `provider/model` specifiers to clients, from the environment plus registrations.
///
/// Built in: `anthropic` (`ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`) and `openai`
/// (`OPENAI_API_KEY`, `OPENAI_BASE_URL`). Register more with ``register(_:_:)``, e.g. a local
/// Ollama: `registry.register("ollama", .openAICompatible(baseURL: "http://127.0.0.1:11434/v1"))`.
/// `MODEL_SPECIFIER` names the default model.
public final class ProviderRegistry: ModelResolver {
    private let registrations: Mutex<[String: ProviderConfiguration]>
    public let defaultModel: ModelSpecifier?
    public let httpClient: HTTPClient
    public let retry: RetryPolicy
    public let logger: Logger
    /// The application's prices by model specifier (`anthropic/claude-sonnet-4-6`), before the catalog's.
    private let prices: Mutex<[String: ModelPrice]>

    /// Reads provider settings from `environment` (the process environment by default).
    /// `prices` (by model specifier, `provider/model`) override or add to ``ModelCatalog/prices``:
    /// a gateway's or a local model's price, a negotiated rate. Throws `invalid_model_specifier`
    /// when `MODEL_SPECIFIER` is set but malformed.
    public init(
        environment: [String: String] = ProcessInfo.processInfo.environment, httpClient: HTTPClient = .shared,
        retry: RetryPolicy = .default, prices: [String: ModelPrice] = [:], logger: Logger = Logger(label: "flue.providers")
    ) throws {
        self.prices = Mutex(prices)
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        self.registrations = Mutex([
            "anthropic": ProviderConfiguration(
                api: .anthropicMessages, baseURL: value("ANTHROPIC_BASE_URL") ?? "https://api.anthropic.com",
                apiKey: value("ANTHROPIC_API_KEY"), apiKeyVariable: "ANTHROPIC_API_KEY"),
            "openai": ProviderConfiguration(
                api: .openAIChatCompletions, baseURL: value("OPENAI_BASE_URL") ?? "https://api.openai.com/v1",
                apiKey: value("OPENAI_API_KEY"), apiKeyVariable: "OPENAI_API_KEY"),
        ])
        self.defaultModel = try value("MODEL_SPECIFIER").map(ModelSpecifier.init(parsing:))
        self.httpClient = httpClient
        self.retry = retry
        self.logger = logger
    }

    /// Sets (or with `nil` removes) the application's price of `model`.
    public func setPrice(_ price: ModelPrice?, for model: ModelSpecifier) {
        prices.withLock { $0[model.description] = price }
    }

    /// The application's price of `model`, else the catalog's; `nil` when neither knows it.
    public func price(for model: ModelSpecifier) -> ModelPrice? {
        prices.withLock { $0[model.description] } ?? ModelCatalog.price(for: model)
    }

    /// Adds or replaces the configuration of a provider id.
    public func register(_ provider: String, _ configuration: ProviderConfiguration) {
        registrations.withLock { $0[provider] = configuration }
    }

    /// The configuration of a provider id, if known.
    public func configuration(for provider: String) -> ProviderConfiguration? {
        registrations.withLock { $0[provider] }
    }

    public func client(for model: ModelSpecifier) throws -> any ModelClient {
        guard let configuration = configuration(for: model.provider) else {
            let known = registrations.withLock { $0.keys.sorted() }.joined(separator: ", ")
            throw FlueError(
                .providerNotConfigured,
                "unknown provider \"\(model.provider)\" in \(model); known providers: \(known). "
                    + "Register OpenAI-compatible servers with ProviderRegistry.register(_:_:)",
                details: ["provider": .string(model.provider)])
        }
        if configuration.apiKey == nil, let variable = configuration.apiKeyVariable {
            throw FlueError(
                .missingAPIKey, "\(model) needs an API key: set \(variable)",
                details: ["provider": .string(model.provider), "variable": .string(variable)])
        }
        switch configuration.api {
        case .anthropicMessages:
            return AnthropicMessagesClient(
                baseURL: configuration.baseURL, apiKey: configuration.apiKey ?? "", extraHeaders: configuration.headers,
                httpClient: httpClient, retry: retry, logger: logger)
        case .openAIChatCompletions:
            return OpenAIChatClient(
                baseURL: configuration.baseURL, apiKey: configuration.apiKey, extraHeaders: configuration.headers,
                tokenLimitField: model.provider == "openai" ? "max_completion_tokens" : "max_tokens",
                httpClient: httpClient, retry: retry, logger: logger)
        }
    }
}
