import FlueRuntime
import OpenAPIRuntime

/// Parses the Messages API event stream: `message_start`, `content_block_start/delta/stop`,
/// `message_delta`, `message_stop`, `ping`, `error`.
struct AnthropicStreamParser: ModelStreamParser {
    private enum Block {
        case text(String)
        case thinking(String, signature: String?)
        /// `initial`: the `input` given whole in `content_block_start` (`{}` from the API itself);
        /// `json`: the `input_json_delta` fragments, which carry the full input when present.
        case toolUse(id: String, name: String, initial: String, json: String)
    }

    private var blocks: [Int: Block] = [:]
    private var usage = Usage()
    private var stopReason: StopReason = .stop
    private(set) var outputStarted = false
    private(set) var isComplete = false

    init() {}

    mutating func consume(_ event: ServerSentEvent, emit: @Sendable (ModelStreamDelta) async -> Void) async throws {
        guard let data = event.data, !data.allSatisfy(\.isWhitespace) else { return }
        let json = try JSONValue.providerEvent(data, provider: "anthropic")
        let type = json["type"]?.stringValue ?? event.event ?? ""
        switch type {
        case "message_start":
            updateUsage(json["message"]?["usage"])
        case "content_block_start":
            guard let index = json["index"]?.intValue, let block = json["content_block"] else { return }
            switch block["type"]?.stringValue {
            case "text":
                blocks[index] = .text(block["text"]?.stringValue ?? "")
            case "thinking":
                blocks[index] = .thinking(block["thinking"]?.stringValue ?? "", signature: nil)
                outputStarted = true
                await emit(.thinkingStart)
            case "tool_use":
                let id = block["id"]?.stringValue ?? ""
                let name = block["name"]?.stringValue ?? ""
                // Some servers send the whole input here and no `input_json_delta`; the API
                // itself sends `{}` and streams the input in deltas, which then win.
                let initial = block["input"].flatMap { $0 == [:] || $0 == .null ? nil : $0.jsonString } ?? ""
                blocks[index] = .toolUse(id: id, name: name, initial: initial, json: "")
                outputStarted = true
                await emit(.toolCallStart(id: id, name: name))
            default:
                break  // redacted_thinking and server tools are not surfaced
            }
        case "content_block_delta":
            guard let index = json["index"]?.intValue, let delta = json["delta"], let block = blocks[index] else {
                return
            }
            switch (block, delta["type"]?.stringValue) {
            case (.text(let text), "text_delta"):
                let piece = delta["text"]?.stringValue ?? ""
                blocks[index] = .text(text + piece)
                outputStarted = true
                await emit(.textDelta(piece))
            case (.thinking(let text, let signature), "thinking_delta"):
                let piece = delta["thinking"]?.stringValue ?? ""
                blocks[index] = .thinking(text + piece, signature: signature)
                await emit(.thinkingDelta(piece))
            case (.thinking(let text, let signature), "signature_delta"):
                blocks[index] = .thinking(text, signature: (signature ?? "") + (delta["signature"]?.stringValue ?? ""))
            case (.toolUse(let id, let name, let initial, let buffer), "input_json_delta"):
                blocks[index] = .toolUse(
                    id: id, name: name, initial: initial, json: buffer + (delta["partial_json"]?.stringValue ?? ""))
            default:
                break
            }
        case "content_block_stop":
            if let index = json["index"]?.intValue, case .thinking = blocks[index] {
                await emit(.thinkingEnd)
            }
        case "message_delta":
            if let reason = json["delta"]?["stop_reason"]?.stringValue {
                stopReason = Self.stopReason(reason)
            }
            // Cumulative counts: whatever the final figures include supersedes `message_start`.
            updateUsage(json["usage"])
        case "message_stop":
            isComplete = true
        case "error":
            let kind = json["error"]?["type"]?.stringValue ?? "error"
            let message = json["error"]?["message"]?.stringValue ?? "unknown error"
            if kind == "overloaded_error" || kind == "api_error" || kind == "rate_limit_error" {
                throw StreamingRequest.RetryableFailure(message: "\(kind): \(message)")
            }
            throw FlueError(
                .modelRequestFailed, "anthropic stream error \(kind): \(message)",
                details: ["errorType": .string(kind)])
        default:
            break  // ping and future event types
        }
    }

    func message(model: ModelSpecifier) -> AssistantMessage {
        let content: [AssistantBlock] = blocks.keys.sorted().compactMap { index in
            switch blocks[index]! {
            case .text(let text): .text(text)
            case .thinking(let text, let signature): .thinking(text, signature: signature)
            case .toolUse(let id, let name, let initial, let json):
                .toolCall(ToolCall(id: id, name: name, arguments: .toolArguments(json.isEmpty ? initial : json)))
            }
        }
        return AssistantMessage(content: content, stopReason: stopReason, usage: usage, model: model)
    }

    /// Takes each count the provider reports; absent counts keep their earlier value.
    private mutating func updateUsage(_ reported: JSONValue?) {
        guard let reported else { return }
        if let count = reported["input_tokens"]?.tokenCount { usage.input = count }
        if let count = reported["cache_read_input_tokens"]?.tokenCount { usage.cacheRead = count }
        if let count = reported["cache_creation_input_tokens"]?.tokenCount { usage.cacheWrite = count }
        if let count = reported["output_tokens"]?.tokenCount { usage.output = count }
    }

    static func stopReason(_ text: String) -> StopReason {
        switch text {
        case "tool_use": .toolUse
        case "max_tokens", "model_context_window_exceeded": .length
        case "refusal": .refusal
        default: .stop
        }
    }
}
