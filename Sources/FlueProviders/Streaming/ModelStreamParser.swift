import FlueRuntime
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
    /// Parses a streamed tool-argument buffer: `{}` when empty, the raw text when it is not JSON
    /// (the tool's argument validation then reports it to the model).
    static func toolArguments(_ buffer: String) -> JSONValue {
        let trimmed = buffer.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return [:] }
        return (try? JSONValue(parsing: trimmed)) ?? .string(buffer)
    }
}

import Foundation
