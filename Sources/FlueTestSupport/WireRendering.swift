import FlueRuntime

/// One server-sent event, rendered as `event:`/`data:` lines.
struct WireEvent {
    var event: String?
    var data: String

    var text: String {
        (event.map { "event: \($0)\n" } ?? "") + "data: \(data)\n\n"
    }
}

/// Splits text into word-sized streaming chunks (each keeps its trailing space).
func streamingChunks(_ text: String) -> [String] {
    var chunks: [String] = []
    var current = ""
    for character in text {
        current.append(character)
        if character == " " {
            chunks.append(current)
            current = ""
        }
    }
    if !current.isEmpty { chunks.append(current) }
    return chunks
}

/// Splits JSON text into three fragments, as providers stream tool arguments.
func argumentFragments(_ text: String) -> [String] {
    guard text.count >= 3 else { return [text] }
    let characters = Array(text)
    let third = characters.count / 3
    return [String(characters[..<third]), String(characters[third..<(2 * third)]), String(characters[(2 * third)...])]
}

/// Anthropic Messages stream events for a reply. `content` ends before `message_delta`.
struct AnthropicRendering {
    var prelude: [WireEvent]
    var content: [WireEvent]
    var ending: [WireEvent]

    init(_ reply: ScriptedReply, model: String, inputTokens: Int, messageId: String) {
        func event(_ type: String, _ data: JSONValue) -> WireEvent { WireEvent(event: type, data: data.jsonString) }
        prelude = [
            event(
                "message_start",
                [
                    "type": "message_start",
                    "message": [
                        "id": .string(messageId), "type": "message", "role": "assistant", "content": [],
                        "model": .string(model), "stop_reason": nil, "stop_sequence": nil,
                        "usage": [
                            "input_tokens": .int(reply.usage?.input ?? inputTokens), "output_tokens": 1,
                            "cache_read_input_tokens": .int(reply.usage?.cacheRead ?? 0),
                            "cache_creation_input_tokens": .int(reply.usage?.cacheWrite ?? 0),
                        ],
                    ],
                ]),
            event("ping", ["type": "ping"]),
        ]
        content = []
        var index = 0
        var outputCharacters = 0
        if let thinking = reply.thinking {
            content.append(
                event(
                    "content_block_start",
                    ["type": "content_block_start", "index": .int(index), "content_block": ["type": "thinking", "thinking": ""]]))
            for chunk in streamingChunks(thinking) {
                content.append(
                    event(
                        "content_block_delta",
                        ["type": "content_block_delta", "index": .int(index), "delta": ["type": "thinking_delta", "thinking": .string(chunk)]]))
            }
            content.append(
                event(
                    "content_block_delta",
                    ["type": "content_block_delta", "index": .int(index), "delta": ["type": "signature_delta", "signature": "sig-fake"]]))
            content.append(event("content_block_stop", ["type": "content_block_stop", "index": .int(index)]))
            index += 1
            outputCharacters += thinking.count
        }
        if let text = reply.text {
            content.append(
                event(
                    "content_block_start",
                    ["type": "content_block_start", "index": .int(index), "content_block": ["type": "text", "text": ""]]))
            for chunk in streamingChunks(text) {
                content.append(
                    event(
                        "content_block_delta",
                        ["type": "content_block_delta", "index": .int(index), "delta": ["type": "text_delta", "text": .string(chunk)]]))
            }
            content.append(event("content_block_stop", ["type": "content_block_stop", "index": .int(index)]))
            index += 1
            outputCharacters += text.count
        }
        for (number, call) in (reply.toolCalls ?? []).enumerated() {
            let id = call.id ?? "toolu_fake_\(messageId.suffix(6))_\(number)"
            content.append(
                event(
                    "content_block_start",
                    [
                        "type": "content_block_start", "index": .int(index),
                        "content_block": ["type": "tool_use", "id": .string(id), "name": .string(call.name), "input": [:]],
                    ]))
            for fragment in argumentFragments(call.argumentText) {
                content.append(
                    event(
                        "content_block_delta",
                        ["type": "content_block_delta", "index": .int(index), "delta": ["type": "input_json_delta", "partial_json": .string(fragment)]]))
            }
            content.append(event("content_block_stop", ["type": "content_block_stop", "index": .int(index)]))
            index += 1
            outputCharacters += call.argumentText.count
        }
        let stop = (reply.toolCalls ?? []).isEmpty ? "end_turn" : "tool_use"
        ending = [
            event(
                "message_delta",
                [
                    "type": "message_delta", "delta": ["stop_reason": .string(stop), "stop_sequence": nil],
                    "usage": ["output_tokens": .int(reply.usage?.output ?? max(1, outputCharacters / 4))],
                ]),
            event("message_stop", ["type": "message_stop"]),
        ]
    }
}

/// OpenAI `chat.completion.chunk` events for a reply, ending with `data: [DONE]`.
struct OpenAIRendering {
    var prelude: [WireEvent]
    var content: [WireEvent]
    var ending: [WireEvent]

    init(_ reply: ScriptedReply, model: String, inputTokens: Int, completionId: String) {
        func chunk(_ delta: JSONValue, finish: JSONValue = nil) -> WireEvent {
            WireEvent(
                event: nil,
                data: JSONValue.object([
                    "id": .string(completionId), "object": "chat.completion.chunk", "created": 1_764_000_000,
                    "model": .string(model),
                    "choices": [["index": 0, "delta": delta, "finish_reason": finish]],
                ]).jsonString)
        }
        prelude = [chunk(["role": "assistant", "content": ""])]
        content = []
        var outputCharacters = 0
        if let thinking = reply.thinking {
            content += streamingChunks(thinking).map { chunk(["reasoning_content": .string($0)]) }
            outputCharacters += thinking.count
        }
        if let text = reply.text {
            content += streamingChunks(text).map { chunk(["content": .string($0)]) }
            outputCharacters += text.count
        }
        for (number, call) in (reply.toolCalls ?? []).enumerated() {
            let id = call.id ?? "call_fake_\(completionId.suffix(6))_\(number)"
            content.append(
                chunk([
                    "tool_calls": [
                        [
                            "index": .int(number), "id": .string(id), "type": "function",
                            "function": ["name": .string(call.name), "arguments": ""],
                        ]
                    ]
                ]))
            for fragment in argumentFragments(call.argumentText) {
                content.append(
                    chunk(["tool_calls": [["index": .int(number), "function": ["arguments": .string(fragment)]]]]))
            }
            outputCharacters += call.argumentText.count
        }
        let finish: JSONValue = (reply.toolCalls ?? []).isEmpty ? "stop" : "tool_calls"
        let output = reply.usage?.output ?? max(1, outputCharacters / 4)
        let cached = reply.usage?.cacheRead ?? 0
        let prompt = (reply.usage?.input ?? inputTokens) + cached
        ending = [
            chunk([:], finish: finish),
            WireEvent(
                event: nil,
                data: JSONValue.object([
                    "id": .string(completionId), "object": "chat.completion.chunk", "created": 1_764_000_000,
                    "model": .string(model), "choices": [],
                    "usage": [
                        "prompt_tokens": .int(prompt), "completion_tokens": .int(output),
                        "total_tokens": .int(prompt + output), "prompt_tokens_details": ["cached_tokens": .int(cached)],
                    ],
                ]).jsonString),
            WireEvent(event: nil, data: "[DONE]"),
        ]
    }
}
