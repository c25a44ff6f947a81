import FlueRuntime
import Synchronization

/// An in-process model for unit tests of the agent loop: a `ModelClient` (and the
/// `ModelResolver` that hands it out for any specifier) that answers each request with the next
/// scripted turn and records the requests. No sockets, no wire protocol; tests of the providers'
/// wire formats use `FakeModelServer` instead.
///
/// When the script runs out it fails the request with `model_request_failed`, so a test that
/// expects N model calls sees an extra one as an error.
public final class ScriptedModel: ModelClient, ModelResolver, Sendable {
    /// One scripted model response.
    public enum Turn: Sendable {
        /// A final text answer (`stop`); the text is also streamed as one delta.
        case text(String)
        /// Tool calls (`toolUse`): names and JSON arguments; ids are `call_<n>`.
        case toolCalls([(name: String, arguments: JSONValue)])
        /// Any message, as is.
        case message(AssistantMessage)
        /// The request fails with this error.
        case failure(FlueError)
        /// Streams `text` as one delta, then never answers: the request ends only when its task
        /// is cancelled (with `CancellationError`).
        case stall(String)
    }

    private struct State {
        var turns: [Turn]
        var requests: [ModelRequest] = []
        var callCount = 0
    }

    private let state: Mutex<State>
    public let defaultModel: ModelSpecifier?

    public init(_ turns: [Turn], defaultModel: ModelSpecifier = ModelSpecifier(provider: "scripted", model: "test")) {
        self.state = Mutex(State(turns: turns))
        self.defaultModel = defaultModel
    }

    /// The requests received so far, in order.
    public var requests: [ModelRequest] { state.withLock { $0.requests } }

    public func client(for model: ModelSpecifier) throws -> any ModelClient { self }

    public func complete(
        _ request: ModelRequest, onDelta: @Sendable (ModelStreamDelta) async -> Void
    ) async throws -> AssistantMessage {
        let (turn, calls) = state.withLock { state -> (Turn?, Int) in
            state.requests.append(request)
            guard !state.turns.isEmpty else { return (nil, 0) }
            let turn = state.turns.removeFirst()
            let callsBefore = state.callCount
            if case .toolCalls(let toolCalls) = turn { state.callCount += toolCalls.count }
            return (turn, callsBefore)
        }
        let usage = Usage(input: 10, output: 5)
        switch turn {
        case nil:
            throw FlueError(.modelRequestFailed, "the scripted model has no turn left for request \(requests.count)")
        case .text(let text):
            await onDelta(.textDelta(text))
            return AssistantMessage(content: [.text(text)], stopReason: .stop, usage: usage, model: request.model)
        case .toolCalls(let toolCalls):
            var blocks: [AssistantBlock] = []
            for (offset, call) in toolCalls.enumerated() {
                let id = "call_\(calls + offset + 1)"
                await onDelta(.toolCallStart(id: id, name: call.name))
                blocks.append(.toolCall(ToolCall(id: id, name: call.name, arguments: call.arguments)))
            }
            return AssistantMessage(content: blocks, stopReason: .toolUse, usage: usage, model: request.model)
        case .message(let message):
            return message
        case .failure(let error):
            throw error
        case .stall(let text):
            await onDelta(.textDelta(text))
            while true { try await Task.sleep(for: .seconds(3600)) }
        }
    }
}
