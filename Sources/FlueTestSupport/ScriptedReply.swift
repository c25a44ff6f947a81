import FlueRuntime

/// One scripted model response. The fake server renders it in the wire format of the endpoint
/// that was called (Anthropic Messages or OpenAI Chat Completions).
///
/// JSON form (for `POST /_fake/script`): `{"text": "Hi"}`, `{"toolCalls": [{"name": "weather",
/// "arguments": {"city": "Paris"}}]}`, `{"status": 429, "retryAfter": 0}`,
/// `{"text": "Hel", "disconnect": "afterOutput"}`.
public struct ScriptedReply: Sendable, Hashable, Codable {
    /// Where to drop the connection instead of finishing the stream.
    public enum Disconnect: String, Sendable, Hashable, Codable {
        /// After the HTTP headers and the message start, before any content.
        case beforeOutput
        /// After the scripted content was streamed, before the end-of-message event.
        case afterOutput
    }

    public var thinking: String?
    public var text: String?
    public var toolCalls: [ScriptedToolCall]?
    /// Answer with this HTTP status and an error body instead of a stream.
    public var status: Int?
    public var errorMessage: String?
    /// `Retry-After` header (seconds) sent with `status`.
    public var retryAfter: Int?
    public var disconnect: Disconnect?
    /// Pause between streamed chunks.
    public var chunkDelayMs: Int?
    /// `Retry-After` sent verbatim with `status` (wins over `retryAfter`), for values a number
    /// cannot carry (`1e300`, `inf`, a date).
    public var retryAfterText: String?
    /// Send these chunks verbatim as the `200` event-stream body, in order, for wire cases the
    /// renderer does not produce (a last event without its blank line, a surrogate pair split
    /// across chunks, parallel calls sharing an index …). Written for whichever API was called.
    public var rawStream: [String]?
    /// Token counts to report instead of the estimated ones (Anthropic's `usage`, OpenAI's as
    /// `prompt_tokens` = input + cache read, with `cached_tokens`).
    public var usage: Usage?

    public init(
        thinking: String? = nil, text: String? = nil, toolCalls: [ScriptedToolCall]? = nil, status: Int? = nil,
        errorMessage: String? = nil, retryAfter: Int? = nil, disconnect: Disconnect? = nil, chunkDelayMs: Int? = nil,
        retryAfterText: String? = nil, rawStream: [String]? = nil, usage: Usage? = nil
    ) {
        self.usage = usage
        self.retryAfterText = retryAfterText
        self.rawStream = rawStream
        self.thinking = thinking
        self.text = text
        self.toolCalls = toolCalls
        self.status = status
        self.errorMessage = errorMessage
        self.retryAfter = retryAfter
        self.disconnect = disconnect
        self.chunkDelayMs = chunkDelayMs
    }

    /// A verbatim event-stream body (see `rawStream`).
    public static func raw(_ chunks: String...) -> ScriptedReply { ScriptedReply(rawStream: chunks) }

    /// A plain text answer.
    public static func text(_ text: String) -> ScriptedReply { ScriptedReply(text: text) }

    /// One tool call with JSON arguments (streamed in fragments).
    public static func toolCall(_ name: String, _ arguments: JSONValue, text: String? = nil) -> ScriptedReply {
        ScriptedReply(text: text, toolCalls: [ScriptedToolCall(name: name, arguments: arguments)])
    }

    /// Several tool calls in one turn.
    public static func toolCalls(_ calls: [ScriptedToolCall]) -> ScriptedReply { ScriptedReply(toolCalls: calls) }

    /// A structured result delivered through the `finish` tool.
    public static func finish(_ arguments: JSONValue) -> ScriptedReply { toolCall("finish", arguments) }

    /// An HTTP error answer (e.g. 429, 500, 400).
    public static func httpError(_ status: Int, message: String = "scripted error", retryAfter: Int? = nil)
        -> ScriptedReply
    {
        ScriptedReply(status: status, errorMessage: message, retryAfter: retryAfter)
    }
}

/// A tool call in a scripted reply. `rawArguments` sends text verbatim (e.g. malformed JSON).
public struct ScriptedToolCall: Sendable, Hashable, Codable {
    public var id: String?
    public var name: String
    public var arguments: JSONValue?
    public var rawArguments: String?

    public init(id: String? = nil, name: String, arguments: JSONValue? = nil, rawArguments: String? = nil) {
        self.id = id
        self.name = name
        self.arguments = arguments
        self.rawArguments = rawArguments
    }

    var argumentText: String { rawArguments ?? (arguments ?? [:]).jsonString }
}

/// A request the fake server received.
public struct RecordedRequest: Sendable, Hashable, Codable {
    /// `anthropic` or `openai`.
    public var api: String
    public var path: String
    public var headers: [String: String]
    public var body: JSONValue

    /// Tool names offered to the model.
    public var toolNames: [String] {
        (body["tools"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue ?? $0["function"]?["name"]?.stringValue }
    }
}
