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
    public var extraHeaders: [String: String]
    /// `max_completion_tokens` (OpenAI) or the older `max_tokens` most compatible servers expect.
    public var tokenLimitField: String
    public var httpClient: HTTPClient
    public var retry: RetryPolicy
    public var logger: Logger

    public init(
        baseURL: String = "https://api.openai.com/v1", apiKey: String?, extraHeaders: [String: String] = [:],
        tokenLimitField: String = "max_completion_tokens", httpClient: HTTPClient = .shared,
        retry: RetryPolicy = .default, logger: Logger = Logger(label: "flue.providers.openai")
    ) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.extraHeaders = extraHeaders
        self.tokenLimitField = tokenLimitField
        self.httpClient = httpClient
        self.retry = retry
        self.logger = logger
    }

    public func complete(
        _ request: ModelRequest, onDelta: @Sendable (ModelStreamDelta) async -> Void
    ) async throws -> AssistantMessage {
        let body = OpenAIWire.requestBody(request, tokenLimitField: tokenLimitField)
        var headers: [(String, String)] = []
        if let apiKey, !apiKey.isEmpty { headers.append(("authorization", "Bearer \(apiKey)")) }
        headers += extraHeaders.sorted(by: { $0.key < $1.key }).map { ($0.key, $0.value) }
        let streaming = StreamingRequest(
            httpClient: httpClient, retry: retry, logger: logger, provider: request.model.provider,
            url: baseURL.trimmingSuffix("/") + "/chat/completions", headers: headers, body: body.jsonData())
        return try await streaming.run(model: request.model, makeParser: OpenAIStreamParser.init, onDelta: onDelta)
    }
}
