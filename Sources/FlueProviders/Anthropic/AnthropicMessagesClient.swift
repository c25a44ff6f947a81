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
    public var transport: ProviderTransport

    public init(
        baseURL: String = "https://api.anthropic.com", apiKey: String, apiVersion: String = "2023-06-01",
        extraHeaders: [String: String] = [:], httpClient: HTTPClient = .shared, retry: RetryPolicy = .default,
        logger: Logger = Logger(label: "flue.providers.anthropic")
    ) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.apiVersion = apiVersion
        self.transport = ProviderTransport(extraHeaders: extraHeaders, httpClient: httpClient, retry: retry, logger: logger)
    }

    public func complete(
        _ request: ModelRequest, onDelta: @Sendable (ModelStreamDelta) async -> Void
    ) async throws -> AssistantMessage {
        try await transport.stream(
            request, url: baseURL.trimmingSuffix("/") + "/v1/messages",
            headers: [("x-api-key", apiKey), ("anthropic-version", apiVersion)], body: AnthropicWire.requestBody(request),
            makeParser: AnthropicStreamParser.init, onDelta: onDelta)
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        var text = self
        while text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return text
    }
}
