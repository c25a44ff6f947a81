import FlueRuntime
import OpenAPIRuntime

/// Parses `chat.completion.chunk` events up to `data: [DONE]`, including tool calls whose
/// arguments arrive as JSON fragments and `reasoning_content` from reasoning servers.
struct OpenAIStreamParser: ModelStreamParser {
    private struct PendingCall {
        var id: String
        var name: String
        var arguments: String
    }

    private var text = ""
    private var thinking = ""
    private var thinkingOpen = false
    private var calls: [Int: PendingCall] = [:]
    private var usage = Usage()
    private var stopReason: StopReason?
    private var sawDone = false
    private(set) var outputStarted = false

    init() {}

    var isComplete: Bool { sawDone }

    mutating func consume(_ event: ServerSentEvent, emit: @Sendable (ModelStreamDelta) async -> Void) async throws {
        guard let data = event.data else { return }
        if data.trimmingCharacters(in: .whitespaces) == "[DONE]" {
            if thinkingOpen {
                thinkingOpen = false
                await emit(.thinkingEnd)
            }
            sawDone = true
            return
        }
        guard let chunk = try? JSONValue(parsing: data) else { return }
        if let error = chunk["error"] {
            let message = error["message"]?.stringValue ?? error.jsonString
            throw StreamingRequest.RetryableFailure(message: "stream error: \(message)")
        }
        if let u = chunk["usage"], u != .null {
            let prompt = u["prompt_tokens"]?.intValue ?? 0
            let cached = u["prompt_tokens_details"]?["cached_tokens"]?.intValue ?? 0
            usage = Usage(input: prompt - cached, output: u["completion_tokens"]?.intValue ?? 0, cacheRead: cached)
        }
        guard let choice = chunk["choices"]?.arrayValue?.first else { return }
        let delta = choice["delta"]
        if let piece = delta?["reasoning_content"]?.stringValue ?? delta?["reasoning"]?.stringValue, !piece.isEmpty {
            if !thinkingOpen {
                thinkingOpen = true
                outputStarted = true
                await emit(.thinkingStart)
            }
            thinking += piece
            await emit(.thinkingDelta(piece))
        }
        if let piece = delta?["content"]?.stringValue, !piece.isEmpty {
            if thinkingOpen {
                thinkingOpen = false
                await emit(.thinkingEnd)
            }
            text += piece
            outputStarted = true
            await emit(.textDelta(piece))
        }
        for call in delta?["tool_calls"]?.arrayValue ?? [] {
            let index = call["index"]?.intValue ?? 0
            let fragment = call["function"]?["arguments"]?.stringValue ?? ""
            if var pending = calls[index] {
                pending.arguments += fragment
                if let name = call["function"]?["name"]?.stringValue, pending.name.isEmpty { pending.name = name }
                calls[index] = pending
            } else {
                let pending = PendingCall(
                    id: call["id"]?.stringValue ?? "call_\(index)",
                    name: call["function"]?["name"]?.stringValue ?? "", arguments: fragment)
                calls[index] = pending
                outputStarted = true
                await emit(.toolCallStart(id: pending.id, name: pending.name))
            }
        }
        if let reason = choice["finish_reason"]?.stringValue {
            stopReason =
                switch reason {
                case "tool_calls", "function_call": .toolUse
                case "length": .length
                default: .stop
                }
        }
    }

    func message(model: ModelSpecifier) -> AssistantMessage {
        var content: [AssistantBlock] = []
        if !thinking.isEmpty { content.append(.thinking(thinking, signature: nil)) }
        if !text.isEmpty { content.append(.text(text)) }
        for index in calls.keys.sorted() {
            let call = calls[index]!
            content.append(.toolCall(ToolCall(id: call.id, name: call.name, arguments: .toolArguments(call.arguments))))
        }
        let stop = stopReason ?? (calls.isEmpty ? .stop : .toolUse)
        return AssistantMessage(content: content, stopReason: stop, usage: usage, model: model)
    }
}
