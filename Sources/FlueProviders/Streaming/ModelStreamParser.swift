import FlueRuntime
import Foundation
import OpenAPIRuntime

/// Turns one provider's server-sent events into deltas and, at the end, an assistant message.
/// A fresh parser is made for every attempt.
protocol ModelStreamParser: Sendable {
    /// Consumes one event, reporting output through `emit`.
    mutating func consume(_ event: ServerSentEvent, emit: @Sendable (ModelStreamDelta) async -> Void) async throws
    /// True once any delta was emitted: from then on the request is never retried.
    var outputStarted: Bool { get }
    /// True once the provider signalled the end of the message.
    var isComplete: Bool { get }
    /// The complete message; called only when `isComplete`.
    func message(model: ModelSpecifier) -> AssistantMessage
}

extension JSONValue {
    /// Parses the JSON of one provider stream event. Unpaired UTF-16 surrogate escapes become
    /// U+FFFD (see `init(parsingLenientSurrogates:)`); anything else that is not JSON is a stream
    /// failure naming the provider and the data, never a silently skipped event.
    static func providerEvent(_ data: String, provider: String) throws -> JSONValue {
        do {
            return try JSONValue(parsingLenientSurrogates: data)
        } catch {
            let reason = JSONValue.parseFailureReason(Data(data.utf8))
            throw StreamingRequest.RetryableFailure(
                message: "\(provider) sent a stream event that is not valid JSON (\(reason)): \(data.prefix(200))")
        }
    }

    /// A token count from a provider: an integer, negative values read as 0.
    var tokenCount: Int? { intValue.map { max(0, $0) } }

    /// Parses a streamed tool-argument buffer: `{}` when empty, the raw text when it is not JSON
    /// (the tool's argument validation then reports it to the model). The `try?` is deliberate:
    /// unparseable arguments are the model's mistake, reported to it, not a stream failure.
    static func toolArguments(_ buffer: String) -> JSONValue {
        let trimmed = buffer.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return [:] }
        return (try? JSONValue(parsing: trimmed)) ?? .string(buffer)
    }
}

