import FlueRuntime

/// The fake server's script queue, request log and stream counters.
public actor FakeModelState {
    private var script: [ScriptedReply] = []
    private(set) var recorded: [RecordedRequest] = []
    /// Streams that ran to their end-of-message event.
    public private(set) var completedStreams = 0
    /// Streams the script told the server to drop.
    public private(set) var droppedStreams = 0
    /// Streams the client abandoned before the end (cancellation, timeouts).
    public private(set) var abandonedStreams = 0

    public init() {}

    /// Queues replies; each request takes the next one. An empty queue answers automatically.
    public func enqueue(_ replies: [ScriptedReply]) { script += replies }

    /// Clears the queue, the log and the counters.
    public func reset() {
        script = []
        recorded = []
        completedStreams = 0
        droppedStreams = 0
        abandonedStreams = 0
    }

    /// The most requests the log keeps (the oldest go first): a long-running `--fake-model`
    /// server must not grow without bound.
    public static let requestLogLimit = 1000

    /// The requests received so far (the last ``requestLogLimit``), oldest first.
    public func requests() -> [RecordedRequest] { recorded }

    /// Replies still queued.
    public var pendingReplies: Int { script.count }

    func record(_ request: RecordedRequest) {
        if recorded.count >= Self.requestLogLimit { recorded.removeFirst(recorded.count - Self.requestLogLimit + 1) }
        recorded.append(request)
    }
    func streamCompleted() { completedStreams += 1 }
    func streamDropped() { droppedStreams += 1 }
    func streamAbandoned() { abandonedStreams += 1 }

    /// The next scripted reply, or an automatic one: a `finish` call with a schema-valid value
    /// when the request offers `finish`; `Done.` after a tool result; a `write` call when the
    /// request offers `write` and the user text names a file in backticks (the last one, e.g.
    /// "write your review to `review.md`"), creating it with a short text; else an echo.
    func nextReply(for body: JSONValue) -> ScriptedReply {
        if !script.isEmpty { return script.removeFirst() }
        var offersWrite = false
        for tool in body["tools"]?.arrayValue ?? [] {
            let name = tool["name"]?.stringValue ?? tool["function"]?["name"]?.stringValue
            if name == "finish" {
                let schema = tool["input_schema"] ?? tool["function"]?["parameters"] ?? [:]
                return .finish(SchemaSample.instance(of: schema))
            }
            if name == "write" { offersWrite = true }
        }
        let messages = body["messages"]?.arrayValue ?? []
        guard let last = messages.last else { return .text("Hello from the fake model.") }
        if last["role"]?.stringValue == "tool" { return .text("Done.") }
        let text: String
        if let blocks = last["content"]?.arrayValue {
            if blocks.contains(where: { $0["type"]?.stringValue == "tool_result" }) { return .text("Done.") }
            text = blocks.compactMap { $0["text"]?.stringValue }.joined(separator: " ")
        } else {
            text = last["content"]?.stringValue ?? ""
        }
        // A prompt that names an offered tool in backticks gets a call of it (sample arguments).
        for tool in body["tools"]?.arrayValue ?? [] {
            guard let name = tool["name"]?.stringValue ?? tool["function"]?["name"]?.stringValue,
                text.contains("`\(name)`")
            else { continue }
            let schema = tool["input_schema"] ?? tool["function"]?["parameters"] ?? [:]
            return .toolCall(name, SchemaSample.instance(of: schema))
        }
        if offersWrite, let path = text.matches(of: /`([A-Za-z0-9_.\/-]+\.[A-Za-z0-9]+)`/).last.map({ String($0.1) }) {
            let content = "# \(path)\n\nWritten by the fake model in answer to: \(text.prefix(120))\n"
            return .toolCall("write", ["path": .string(path), "content": .string(content)])
        }
        return .text("Echo: \(text)")
    }
}
