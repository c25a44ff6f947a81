import Foundation

/// Token counts of one or more model calls.
public struct Usage: Sendable, Hashable, Codable {
    public var input: Int
    public var output: Int
    public var cacheRead: Int
    public var cacheWrite: Int
    /// What these tokens cost in US dollars; `nil` when the model's price is unknown (a sum
    /// covers the priced turns).
    public var cost: Cost?

    public init(input: Int = 0, output: Int = 0, cacheRead: Int = 0, cacheWrite: Int = 0, cost: Cost? = nil) {
        self.input = input
        self.output = output
        self.cacheRead = cacheRead
        self.cacheWrite = cacheWrite
        self.cost = cost
    }

    /// All tokens counted (saturating at `Int.max`: counts come from providers).
    public var totalTokens: Int { [input, output, cacheRead, cacheWrite].reduce(0, Self.saturatingSum) }

    /// Field-wise sums, saturating at `Int.max`/`Int.min` instead of trapping: token counts come
    /// from model providers and are not trusted to be small.
    public static func + (lhs: Usage, rhs: Usage) -> Usage {
        Usage(
            input: saturatingSum(lhs.input, rhs.input), output: saturatingSum(lhs.output, rhs.output),
            cacheRead: saturatingSum(lhs.cacheRead, rhs.cacheRead),
            cacheWrite: saturatingSum(lhs.cacheWrite, rhs.cacheWrite),
            cost: Self.sum(lhs.cost, rhs.cost))
    }

    /// Costs add; an unknown cost counts nothing unless both are unknown.
    private static func sum(_ a: Cost?, _ b: Cost?) -> Cost? {
        guard let a else { return b }
        guard let b else { return a }
        return a + b
    }

    static func saturatingSum(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : sum
    }

    public static func += (lhs: inout Usage, rhs: Usage) { lhs = lhs + rhs }

    enum CodingKeys: String, CodingKey { case input, output, cacheRead, cacheWrite, totalTokens, cost }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        input = try c.decodeIfPresent(Int.self, forKey: .input) ?? 0
        output = try c.decodeIfPresent(Int.self, forKey: .output) ?? 0
        cacheRead = try c.decodeIfPresent(Int.self, forKey: .cacheRead) ?? 0
        cacheWrite = try c.decodeIfPresent(Int.self, forKey: .cacheWrite) ?? 0
        cost = try c.decodeIfPresent(Cost.self, forKey: .cost)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(input, forKey: .input)
        try c.encode(output, forKey: .output)
        try c.encode(cacheRead, forKey: .cacheRead)
        try c.encode(cacheWrite, forKey: .cacheWrite)
        try c.encode(totalTokens, forKey: .totalTokens)
        try c.encodeIfPresent(cost, forKey: .cost)
    }
}

/// An image attached to a user message.
public struct ImageContent: Sendable, Hashable, Codable {
    /// Base64-encoded bytes.
    public var data: String
    /// e.g. `image/png`.
    public var mimeType: String

    public init(data: String, mimeType: String) {
        self.data = data
        self.mimeType = mimeType
    }
}

/// A tool call the model asked for.
public struct ToolCall: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    public var arguments: JSONValue

    public init(id: String, name: String, arguments: JSONValue) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }
}

/// Why the model stopped producing output.
public enum StopReason: String, Sendable, Hashable, Codable {
    /// `length`: the output token limit cut the turn off. `refusal`: the model declined (OpenAI
    /// `delta.refusal`, Anthropic `stop_reason: "refusal"`); the refusal text is the message text.
    case stop, length, toolUse, error, aborted, refusal
}

/// One block of an assistant message, in the order the model produced them.
public enum AssistantBlock: Sendable, Hashable, Codable {
    case text(String)
    /// Reasoning text; `signature` is the provider's opaque token that must be echoed back.
    case thinking(String, signature: String?)
    case toolCall(ToolCall)
}

/// One model response.
public struct AssistantMessage: Sendable, Hashable, Codable {
    public var content: [AssistantBlock]
    public var stopReason: StopReason
    public var usage: Usage
    public var model: ModelSpecifier
    public var errorMessage: String?

    public init(
        content: [AssistantBlock], stopReason: StopReason, usage: Usage, model: ModelSpecifier,
        errorMessage: String? = nil
    ) {
        self.content = content
        self.stopReason = stopReason
        self.usage = usage
        self.model = model
        self.errorMessage = errorMessage
    }

    /// The concatenated text blocks.
    public var text: String {
        content.compactMap { if case .text(let text) = $0 { text } else { nil } }.joined()
    }

    /// The tool calls, in order.
    public var toolCalls: [ToolCall] {
        content.compactMap { if case .toolCall(let call) = $0 { call } else { nil } }
    }
}

/// The outcome of one tool call, sent back to the model.
public struct ToolResultMessage: Sendable, Hashable, Codable {
    public var toolCallId: String
    public var toolName: String
    public var content: String
    public var isError: Bool

    public init(toolCallId: String, toolName: String, content: String, isError: Bool) {
        self.toolCallId = toolCallId
        self.toolName = toolName
        self.content = content
        self.isError = isError
    }
}

/// A conversation entry, as stored in a session and sent to providers.
public enum Message: Sendable, Hashable, Codable {
    case user(text: String, images: [ImageContent])
    case assistant(AssistantMessage)
    case toolResult(ToolResultMessage)
}
