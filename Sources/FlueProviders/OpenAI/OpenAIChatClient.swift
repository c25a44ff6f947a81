import AsyncHTTPClient
import FlueRuntime
import Foundation
import Logging

/// Calls an OpenAI Chat Completions endpoint (`POST {baseURL}/chat/completions`, `stream: true`):
/// OpenAI itself or any compatible server (vLLM, Ollama, llama.cpp, OpenRouter, …).
public struct OpenAIChatClient: ModelClient {
    /// API root including the version, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`.
    public var baseURL: String
    /// Sent as `Authorization: Bearer …` when present.
    public var apiKey: String?
    /// `max_completion_tokens` (OpenAI) or the older `max_tokens` most compatible servers expect.
    public var tokenLimitField: String
    public var transport: ProviderTransport

    public init(
        baseURL: String = "https://api.openai.com/v1", apiKey: String?, extraHeaders: [String: String] = [:],
        tokenLimitField: String = "max_completion_tokens", httpClient: HTTPClient = .shared,
        retry: RetryPolicy = .default, logger: Logger = Logger(label: "flue.providers.openai")
    ) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.tokenLimitField = tokenLimitField
        self.transport = ProviderTransport(extraHeaders: extraHeaders, httpClient: httpClient, retry: retry, logger: logger)
    }

    public func complete(
        _ request: ModelRequest, onDelta: @Sendable (ModelStreamDelta) async -> Void
    ) async throws -> AssistantMessage {
        var headers: [(String, String)] = []
        if let apiKey, !apiKey.isEmpty { headers.append(("authorization", "Bearer \(apiKey)")) }
        return try await transport.stream(
            request, url: baseURL.trimmingSuffix("/") + "/chat/completions", headers: headers,
            body: OpenAIWire.requestBody(request, tokenLimitField: tokenLimitField),
            makeParser: OpenAIStreamParser.init, onDelta: onDelta)
    }
}
