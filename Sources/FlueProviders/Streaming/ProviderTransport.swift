import AsyncHTTPClient
import FlueRuntime
import Foundation
import Logging

/// How a provider client reaches its API: the HTTP client, retries, logging and headers added to
/// every request. Shared by ``AnthropicMessagesClient`` and ``OpenAIChatClient``.
public struct ProviderTransport: Sendable {
    /// Sent after the provider's own headers, sorted by name.
    public var extraHeaders: [String: String]
    public var httpClient: HTTPClient
    public var retry: RetryPolicy
    public var logger: Logger

    public init(extraHeaders: [String: String], httpClient: HTTPClient, retry: RetryPolicy, logger: Logger) {
        self.extraHeaders = extraHeaders
        self.httpClient = httpClient
        self.retry = retry
        self.logger = logger
    }

    /// Streams one completion: `POST` of `body` to `url` with `headers` then ``extraHeaders``,
    /// parsed by the provider's parser, retried per ``retry``.
    func stream<Parser: ModelStreamParser>(
        _ request: ModelRequest, url: String, headers: [(String, String)], body: JSONValue,
        makeParser: () -> Parser, onDelta: @Sendable (ModelStreamDelta) async -> Void
    ) async throws -> AssistantMessage {
        let streaming = StreamingRequest(
            httpClient: httpClient, retry: retry, logger: logger, provider: request.model.provider, url: url,
            headers: headers + extraHeaders.sorted(by: { $0.key < $1.key }).map { ($0.key, $0.value) },
            body: body.jsonData())
        return try await streaming.run(model: request.model, makeParser: makeParser, onDelta: onDelta)
    }
}
