import FlueRuntime

/// Request bodies of the Anthropic Messages API.
enum AnthropicWire {
    static func requestBody(_ request: ModelRequest) -> JSONValue {
        var body: [String: JSONValue] = [
            "model": .string(request.model.model),
            "max_tokens": .int(request.maxOutputTokens),
            "stream": true,
            "messages": .array(messages(request.messages)),
        ]
        if !request.systemPrompt.isEmpty { body["system"] = .string(request.systemPrompt) }
        if !request.tools.isEmpty {
            body["tools"] = .array(
                request.tools.map {
                    ["name": .string($0.name), "description": .string($0.description), "input_schema": $0.parameters.value]
                })
        }
        if let budget = thinkingBudget(request.thinking) {
            body["thinking"] = ["type": "enabled", "budget_tokens": .int(budget)]
            body["max_tokens"] = .int(max(request.maxOutputTokens, budget + 4096))
        }
        return .object(body)
    }

    static func thinkingBudget(_ level: ThinkingLevel) -> Int? {
        switch level {
        case .off: nil
        case .minimal: 1024
        case .low: 2048
        case .medium: 8192
        case .high: 16384
        case .xhigh: 32000
        }
    }

    /// Converts the conversation; consecutive tool results share one user message, as the API requires.
    static func messages(_ messages: [Message]) -> [JSONValue] {
        var out: [JSONValue] = []
        var pendingResults: [JSONValue] = []
        func flushResults() {
            if !pendingResults.isEmpty {
                out.append(["role": "user", "content": .array(pendingResults)])
                pendingResults = []
            }
        }
        for message in messages {
            switch message {
            case .toolResult(let result):
                pendingResults.append([
                    "type": "tool_result", "tool_use_id": .string(result.toolCallId),
                    "content": .string(result.content), "is_error": .bool(result.isError),
                ])
            case .user(let text, let images):
                flushResults()
                var blocks: [JSONValue] = images.map {
                    [
                        "type": "image",
                        "source": ["type": "base64", "media_type": .string($0.mimeType), "data": .string($0.data)],
                    ]
                }
                blocks.append(["type": "text", "text": .string(text.isEmpty ? " " : text)])
                out.append(["role": "user", "content": .array(blocks)])
            case .assistant(let assistant):
                flushResults()
                var blocks: [JSONValue] = []
                for block in assistant.content {
                    switch block {
                    case .text(let text) where !text.isEmpty:
                        blocks.append(["type": "text", "text": .string(text)])
                    case .text:
                        break
                    case .thinking(let text, let signature?):
                        blocks.append(["type": "thinking", "thinking": .string(text), "signature": .string(signature)])
                    case .thinking:
                        break  // unsigned reasoning (from another provider) cannot be replayed
                    case .toolCall(let call):
                        // `input` must be an object. Arguments that were not one (malformed or cut
                        // off by the token limit) are replayed as the text the model wrote, never
                        // as `{}`, so the model sees its own call next to the result explaining it.
                        let input: JSONValue =
                            call.arguments.objectValue != nil
                            ? call.arguments
                            : ["unparsed_arguments": .string(call.arguments.stringValue ?? call.arguments.jsonString)]
                        blocks.append([
                            "type": "tool_use", "id": .string(call.id), "name": .string(call.name), "input": input,
                        ])
                    }
                }
                if blocks.isEmpty { blocks.append(["type": "text", "text": "(no output)"]) }
                out.append(["role": "assistant", "content": .array(blocks)])
            }
        }
        flushResults()
        return out
    }
}
