import AsyncHTTPClient
import FlueRuntime
import Foundation
import Logging

/// Calls the Anthropic Messages API (`POST /v1/messages`, `stream: true`).
public struct AnthropicMessagesClient: ModelClient {
    /// API root without `/v1`, e.g. `https://api.anthropic.com`.
    public var baseURL: String
    public var apiKey: String
    /// Sent as `anthropic-version`.
    public var apiVersion: String
    public var extraHeaders: [String: String]
    public var httpClient: HTTPClient
    public var retry: RetryPolicy
    public var logger: Logger

    public init(
        baseURL: String = "https://api.anthropic.com", apiKey: String, apiVersion: String = "2023-06-01",
        extraHeaders: [String: String] = [:], httpClient: HTTPClient = .shared, retry: RetryPolicy = .default,
        logger: Logger = Logger(label: "flue.providers.anthropic")
    ) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.apiVersion = apiVersion
        self.extraHeaders = extraHeaders
        self.httpClient = httpClient
        self.retry = retry
        self.logger = logger
    }

    public func complete(
        _ request: ModelRequest, onDelta: @Sendable (ModelStreamDelta) async -> Void
    ) async throws -> AssistantMessage {
        let body = AnthropicWire.requestBody(request)
        var headers = [("x-api-key", apiKey), ("anthropic-version", apiVersion)]
        headers += extraHeaders.sorted(by: { $0.key < $1.key }).map { ($0.key, $0.value) }
        let streaming = StreamingRequest(
            httpClient: httpClient, retry: retry, logger: logger, provider: request.model.provider,
            url: baseURL.trimmingSuffix("/") + "/v1/messages", headers: headers, body: body.jsonData())
        return try await streaming.run(model: request.model, makeParser: AnthropicStreamParser.init, onDelta: onDelta)
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        var text = self
        while text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return text
    }
}
