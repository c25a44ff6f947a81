import FlueRuntime

/// Request bodies of the Chat Completions API.
enum OpenAIWire {
    static func requestBody(_ request: ModelRequest, tokenLimitField: String) -> JSONValue {
        var messages: [JSONValue] = []
        if !request.systemPrompt.isEmpty {
            messages.append(["role": "system", "content": .string(request.systemPrompt)])
        }
        messages += request.messages.map(message)
        var body: [String: JSONValue] = [
            "model": .string(request.model.model),
            "messages": .array(messages),
            "stream": true,
            "stream_options": ["include_usage": true],
            tokenLimitField: .int(request.maxOutputTokens),
        ]
        if !request.tools.isEmpty {
            body["tools"] = .array(
                request.tools.map {
                    [
                        "type": "function",
                        "function": [
                            "name": .string($0.name), "description": .string($0.description),
                            "parameters": $0.parameters.value,
                        ],
                    ]
                })
        }
        switch request.thinking {
        case .off: break
        case .minimal, .low: body["reasoning_effort"] = .string(request.thinking == .minimal ? "minimal" : "low")
        case .medium: body["reasoning_effort"] = "medium"
        case .high, .xhigh: body["reasoning_effort"] = "high"
        }
        return .object(body)
    }

    static func message(_ message: Message) -> JSONValue {
        switch message {
        case .user(let text, let images):
            if images.isEmpty { return ["role": "user", "content": .string(text)] }
            var parts: [JSONValue] = [["type": "text", "text": .string(text)]]
            parts += images.map {
                ["type": "image_url", "image_url": ["url": .string("data:\($0.mimeType);base64,\($0.data)")]]
            }
            return ["role": "user", "content": .array(parts)]
        case .assistant(let assistant):
            var object: [String: JSONValue] = ["role": "assistant"]
            let text = assistant.text
            object["content"] = text.isEmpty ? .null : .string(text)
            let calls = assistant.toolCalls
            if !calls.isEmpty {
                object["tool_calls"] = .array(
                    calls.map {
                        let arguments = $0.arguments.stringValue ?? $0.arguments.jsonString
                        return [
                            "id": .string($0.id), "type": "function",
                            "function": ["name": .string($0.name), "arguments": .string(arguments)],
                        ]
                    })
            }
            return .object(object)
        case .toolResult(let result):
            return ["role": "tool", "tool_call_id": .string(result.toolCallId), "content": .string(result.content)]
        }
    }
}
