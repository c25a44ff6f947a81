import AsyncHTTPClient
import FlueRuntime
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import OpenAPIRuntime

/// Sends one streaming model request with retries, and feeds its server-sent events to a parser.
struct StreamingRequest: Sendable {
    var httpClient: HTTPClient
    var retry: RetryPolicy
    var logger: Logger
    /// Provider id, for messages.
    var provider: String
    var url: String
    var headers: [(String, String)]
    var body: Data
    /// How long one attempt (connect, headers and the whole stream) may take.
    var timeout: TimeAmount = .minutes(15)

    func run<Parser: ModelStreamParser>(
        model: ModelSpecifier, makeParser: () -> Parser, onDelta: @Sendable (ModelStreamDelta) async -> Void
    ) async throws -> AssistantMessage {
        var attempt = 0
        while true {
            attempt += 1
            try Task.checkCancellation()
            var parser = makeParser()
            let failure: RetryableFailure
            do {
                return try await self.attempt(model: model, parser: &parser, onDelta: onDelta)
            } catch let retryable as RetryableFailure {
                failure = retryable
            }
            guard !parser.outputStarted else {
                throw FlueError(
                    .modelStreamInterrupted,
                    "\(provider) stream broke after output had started: \(failure.message)",
                    details: ["provider": .string(provider)])
            }
            guard attempt <= retry.maxRetries else {
                throw FlueError(
                    .modelRequestFailed,
                    "\(provider) request failed after \(attempt) attempts: \(failure.message)",
                    details: failure.details.merging(
                        ["provider": .string(provider), "attempts": .int(attempt)], uniquingKeysWith: { $1 }))
            }
            let delay = retry.delay(beforeRetry: attempt, retryAfterSeconds: failure.retryAfter)
            logger.warning(
                "model request failed, retrying",
                metadata: ["provider": "\(provider)", "attempt": "\(attempt)", "reason": "\(failure.message)",
                    "delayMs": "\(delay.wholeMilliseconds)"])
            try await Task.sleep(for: delay)
        }
    }

    /// A failure that may be retried if nothing was streamed yet.
    struct RetryableFailure: Error {
        var message: String
        var retryAfter: Double?
        var details: [String: JSONValue] = [:]
    }

    private func attempt<Parser: ModelStreamParser>(
        model: ModelSpecifier, parser: inout Parser, onDelta: @Sendable (ModelStreamDelta) async -> Void
    ) async throws -> AssistantMessage {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "accept", value: "text/event-stream")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))

        let response: HTTPClientResponse
        do {
            response = try await httpClient.execute(request, timeout: timeout, logger: logger)
        } catch {
            try Self.rethrowCancellation(error)
            throw RetryableFailure(message: "could not reach \(url): \(error)")
        }
        guard response.status == .ok else {
            let text = try await Self.collectErrorBody(response)
            let message = Self.errorMessage(from: text) ?? "HTTP \(response.status.code)"
            let details: [String: JSONValue] = ["status": .int(Int(response.status.code)), "body": .string(text)]
            if response.status.code == 429 || response.status.code >= 500 {
                throw RetryableFailure(
                    message: "HTTP \(response.status.code): \(message)",
                    retryAfter: response.headers.first(name: "retry-after").flatMap { Double($0.trimmingCharacters(in: .whitespaces)) },
                    details: details)
            }
            if Self.isContextOverflow(status: Int(response.status.code), body: text) {
                throw FlueError(
                    .contextWindowExceeded, "\(provider) refused the request as too long for the model: \(message)",
                    details: details.merging(["provider": .string(provider)], uniquingKeysWith: { $1 }))
            }
            throw FlueError(
                .modelRequestFailed, "\(provider) answered HTTP \(response.status.code): \(message)",
                details: details.merging(["provider": .string(provider)], uniquingKeysWith: { $1 }))
        }

        let events = response.body.map { ArraySlice($0.readableBytesView) }.flushingLastEvent()
            .asDecodedServerSentEvents()
        do {
            for try await event in events {
                try await parser.consume(event, emit: onDelta)
                if parser.isComplete { break }
            }
        } catch let error as FlueError {
            throw error
        } catch let error as RetryableFailure {
            throw error
        } catch {
            try Self.rethrowCancellation(error)
            throw RetryableFailure(message: "stream broke: \(error)")
        }
        try Task.checkCancellation()
        guard parser.isComplete else {
            throw RetryableFailure(message: "the stream ended before the message was complete")
        }
        return parser.message(model: model)
    }

    private static func rethrowCancellation(_ error: any Error) throws {
        if error is CancellationError || Task.isCancelled { throw CancellationError() }
        if let client = error as? HTTPClientError, client == .cancelled { throw CancellationError() }
    }

    private static func collectErrorBody(_ response: HTTPClientResponse) async throws -> String {
        do {
            let buffer = try await response.body.collect(upTo: 64 * 1024)
            return String(buffer: buffer)
        } catch {
            try rethrowCancellation(error)
            return ""
        }
    }

    /// Whether an error answer says the conversation does not fit the model's context window:
    /// HTTP 400 or 413 whose error code is `context_length_exceeded` (OpenAI and compatible
    /// servers) or whose message says so in the words providers use (Anthropic "prompt is too
    /// long", OpenAI "maximum context length", vLLM/Ollama "context length", "context window").
    static func isContextOverflow(status: Int, body: String) -> Bool {
        guard status == 400 || status == 413 else { return false }
        let json = try? JSONValue(parsing: body)
        if json?["error"]?["code"]?.stringValue == "context_length_exceeded" { return true }
        let message = (errorMessage(from: body) ?? body).lowercased()
        return ["prompt is too long", "maximum context length", "context length", "context window", "context_length_exceeded"]
            .contains { message.contains($0) }
    }

    /// Both providers answer errors as `{"error": {"message": …}}`.
    static func errorMessage(from body: String) -> String? {
        guard let json = try? JSONValue(parsing: body) else { return body.isEmpty ? nil : String(body.prefix(500)) }
        return json["error"]?["message"]?.stringValue ?? json["message"]?.stringValue
    }
}
