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
    private var refused = false
    /// Calls in the order they started.
    private var calls: [PendingCall] = []
    /// Which call a fragment with a given `index` continues. Servers that send parallel calls
    /// all with `index: 0` are told apart by their `id`: a new id starts a new call.
    private var callByIndex: [Int: Int] = [:]
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
        if data.allSatisfy(\.isWhitespace) { return }
        let chunk = try JSONValue.providerEvent(data, provider: "openai")
        if let error = chunk["error"] {
            let message = error["message"]?.stringValue ?? error.jsonString
            throw StreamingRequest.RetryableFailure(message: "stream error: \(message)")
        }
        if let u = chunk["usage"], u != .null {
            // The last usage a server reports is its final figure (some send one per chunk).
            let prompt = u["prompt_tokens"]?.tokenCount ?? 0
            let cached = min(prompt, u["prompt_tokens_details"]?["cached_tokens"]?.tokenCount ?? 0)
            usage = Usage(input: prompt - cached, output: u["completion_tokens"]?.tokenCount ?? 0, cacheRead: cached)
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
        // A refusal is the model's answer: delivered as text, with stop reason `refusal`.
        let refusal = delta?["refusal"]?.stringValue ?? ""
        if !refusal.isEmpty { refused = true }
        for piece in [delta?["content"]?.stringValue ?? "", refusal] where !piece.isEmpty {
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
            let id = call["id"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            let fragment = call["function"]?["arguments"]?.stringValue ?? ""
            if let position = callByIndex[index], id == nil || id == calls[position].id {
                calls[position].arguments += fragment
                if let name = call["function"]?["name"]?.stringValue, calls[position].name.isEmpty {
                    calls[position].name = name
                }
            } else {
                let pending = PendingCall(
                    id: id ?? "call_\(calls.count)", name: call["function"]?["name"]?.stringValue ?? "",
                    arguments: fragment)
                callByIndex[index] = calls.count
                calls.append(pending)
                outputStarted = true
                await emit(.toolCallStart(id: pending.id, name: pending.name))
            }
        }
        if let reason = choice["finish_reason"]?.stringValue {
            stopReason =
                switch reason {
                case "tool_calls", "function_call": .toolUse
                case "length": .length
                case "content_filter": .refusal
                default: .stop
                }
        }
    }

    func message(model: ModelSpecifier) -> AssistantMessage {
        var content: [AssistantBlock] = []
        if !thinking.isEmpty { content.append(.thinking(thinking, signature: nil)) }
        if !text.isEmpty { content.append(.text(text)) }
        for call in calls {
            content.append(.toolCall(ToolCall(id: call.id, name: call.name, arguments: .toolArguments(call.arguments))))
        }
        var stop = stopReason ?? (calls.isEmpty ? .stop : .toolUse)
        if refused && stop == .stop { stop = .refusal }
        return AssistantMessage(content: content, stopReason: stop, usage: usage, model: model)
    }
}
