/// Names a model as `provider/model`, e.g. `anthropic/claude-sonnet-4-6` or `ollama/llama3.2`.
///
/// The string is split at the first `/`, so model ids may themselves contain slashes
/// (`openrouter/moonshotai/kimi-k2`).
public struct ModelSpecifier: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The provider id: `anthropic`, `openai`, or a registered OpenAI-compatible provider.
    public var provider: String
    /// The provider's model id.
    public var model: String

    /// Creates a specifier from its two parts.
    public init(provider: String, model: String) {
        self.provider = provider
        self.model = model
    }

    /// Parses `provider/model`; throws `invalid_model_specifier` when either part is missing.
    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let slash = trimmed.firstIndex(of: "/"),
            slash != trimmed.startIndex,
            trimmed.index(after: slash) != trimmed.endIndex
        else {
            throw FlueError(
                .invalidModelSpecifier,
                "model specifier \"\(text)\" must have the form provider/model, e.g. anthropic/claude-sonnet-4-6"
            )
        }
        self.provider = String(trimmed[..<slash])
        self.model = String(trimmed[trimmed.index(after: slash)...])
    }

    public var description: String { "\(provider)/\(model)" }

    public init(from decoder: any Decoder) throws {
        try self.init(parsing: decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension ModelSpecifier: ExpressibleByStringLiteral {
    /// A literal specifier; a malformed literal is a programming error and traps.
    public init(stringLiteral value: String) {
        do {
            try self.init(parsing: value)
        } catch {
            preconditionFailure("\(error)")
        }
    }
}

import Foundation
