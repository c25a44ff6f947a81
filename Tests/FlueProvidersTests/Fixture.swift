import FlueProviders
import FlueRuntime
import FlueTestSupport
import Foundation
import Synchronization
import Testing

/// The two wire protocols every agent-loop test runs against.
enum WireAPI: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case anthropic, openai
    var testDescription: String { rawValue }
    var model: ModelSpecifier { self == .anthropic ? "anthropic/claude-fake" : "openai/gpt-fake" }
}

/// Collects every emitted event.
final class EventLog: Sendable {
    private let events = Mutex<[FlueEvent]>([])
    var emitter: EventEmitter { EventEmitter(base: EventCorrelation(runId: "run_test")) { [self] e in events.withLock { $0.append(e) } } }
    var all: [FlueEvent] { events.withLock { $0 } }
    var types: [String] { all.map(\.type) }
    /// Event types without streaming deltas, for order assertions.
    var skeleton: [String] { types.filter { !$0.hasSuffix("_delta") } }
}

/// A fake model server plus a provider registry pointed at it, with fast retries.
struct Fixture {
    let server: FakeModelServer
    let registry: ProviderRegistry
    let log = EventLog()

    static func start(environment extra: [String: String] = [:]) async throws -> Fixture {
        let server = try await FakeModelServer.start()
        var environment = [
            "ANTHROPIC_API_KEY": "test-anthropic-key", "ANTHROPIC_BASE_URL": server.anthropicBaseURL,
            "OPENAI_API_KEY": "test-openai-key", "OPENAI_BASE_URL": server.openAIBaseURL,
        ]
        environment.merge(extra, uniquingKeysWith: { $1 })
        let registry = try ProviderRegistry(
            environment: environment,
            retry: RetryPolicy(maxRetries: 2, baseDelay: .milliseconds(10), maxDelay: .milliseconds(50)))
        return Fixture(server: server, registry: registry)
    }

    func harness(_ agent: Agent, store: any SessionStore = InMemorySessionStore(), emitter: EventEmitter? = nil) -> Harness {
        Harness(agent: agent, instanceId: "instance-1", models: registry, store: store, events: emitter ?? log.emitter)
    }

    func session(_ agent: Agent) async throws -> Session {
        try await harness(agent).session()
    }

    func enqueue(_ replies: ScriptedReply...) async { await server.state.enqueue(replies) }
    func requests() async -> [RecordedRequest] { await server.requests() }
}

/// Helpers to read provider-neutral facts out of recorded request bodies.
extension RecordedRequest {
    /// Tool results sent back to the model in this request: (tool call id, content, isError).
    var toolResults: [(id: String, content: String, isError: Bool)] {
        let messages = body["messages"]?.arrayValue ?? []
        if api == "anthropic" {
            return messages.flatMap { message in
                (message["content"]?.arrayValue ?? []).filter { $0["type"] == "tool_result" }.map {
                    ($0["tool_use_id"]?.stringValue ?? "", $0["content"]?.stringValue ?? "", $0["is_error"] == true)
                }
            }
        }
        return messages.filter { $0["role"] == "tool" }.map {
            // OpenAI has no error flag; Flue marks errors in the content only.
            ($0["tool_call_id"]?.stringValue ?? "", $0["content"]?.stringValue ?? "", false)
        }
    }

    /// Every user-authored text in the request, in order.
    var userTexts: [String] {
        (body["messages"]?.arrayValue ?? []).filter { $0["role"] == "user" }.flatMap { message -> [String] in
            if let text = message["content"]?.stringValue { return [text] }
            return (message["content"]?.arrayValue ?? []).compactMap { $0["type"] == "text" ? $0["text"]?.stringValue : nil }
        }
    }

    /// The system prompt, wherever the protocol puts it.
    var systemPrompt: String? {
        body["system"]?.stringValue
            ?? body["messages"]?.arrayValue?.first(where: { $0["role"] == "system" })?["content"]?.stringValue
    }

    /// The parameter schema of an offered tool.
    func toolSchema(_ name: String) -> JSONValue? {
        for tool in body["tools"]?.arrayValue ?? [] {
            if tool["name"]?.stringValue == name { return tool["input_schema"] }
            if tool["function"]?["name"]?.stringValue == name { return tool["function"]?["parameters"] }
        }
        return nil
    }
}

/// Waits until `condition` holds, polling every 20 ms, failing after `timeout`.
func eventually(
    timeout: Duration = .seconds(5), _ condition: @Sendable () async -> Bool, sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("condition not met within \(timeout)", sourceLocation: sourceLocation)
}
