import FlueRuntime
import Synchronization
import Testing

/// Threshold compaction inside one long tool loop (an in-process model: it answers summary
/// requests with a summary, every other request with a `fetch` call until the last).
@Suite struct CompactionLoopTests {
    struct FetchArguments: Codable, Sendable { var page: Int }

    final class LoopModel: ModelClient, ModelResolver, Sendable {
        let defaultModel: ModelSpecifier? = "scripted/test"
        let toolTurns: Int
        let failSummaries: Bool
        private let log = Mutex<[ModelRequest]>([])

        init(toolTurns: Int, failSummaries: Bool = false) {
            self.toolTurns = toolTurns
            self.failSummaries = failSummaries
        }

        var requests: [ModelRequest] { log.withLock { $0 } }
        static func isSummary(_ request: ModelRequest) -> Bool { request.systemPrompt.contains("checkpoint summaries") }

        func client(for model: ModelSpecifier) throws -> any ModelClient { self }

        func complete(_ request: ModelRequest, onDelta: @Sendable (ModelStreamDelta) async -> Void) async throws
            -> AssistantMessage
        {
            let turn = log.withLock { log in
                log.append(request)
                return log.filter { !Self.isSummary($0) }.count
            }
            if Self.isSummary(request) {
                if failSummaries { throw FlueError(.modelRequestFailed, "the summariser is down") }
                return AssistantMessage(
                    content: [.text("SUMMARY")], stopReason: .stop, usage: Usage(input: 100, output: 5), model: request.model)
            }
            if turn <= toolTurns {
                let call = ToolCall(id: "call_\(turn)", name: "fetch", arguments: ["page": .int(turn)])
                return AssistantMessage(content: [.toolCall(call)], stopReason: .toolUse, usage: Usage(), model: request.model)
            }
            return AssistantMessage(content: [.text("finished")], stopReason: .stop, usage: Usage(), model: request.model)
        }
    }

    /// Each `fetch` answers 1 600 characters (about 400 tokens); the threshold is 2 000 tokens.
    static func agent() throws -> Agent {
        let fetch = try FunctionTool(name: "fetch", description: "Fetches a page.", arguments: FetchArguments.self) { _ in
            String(repeating: "r", count: 1_600)
        }
        return try Agent(
            name: "crawler", tools: [fetch],
            compaction: CompactionPolicy(contextWindow: 3_000, reserveTokens: 1_000, keepRecentTokens: 400))
    }

    @Test func aLongToolLoopIsCompactedBetweenItsTurns() async throws {
        let model = LoopModel(toolTurns: 12)
        let events = Mutex<[FlueEvent]>([])
        let harness = Harness(
            agent: try Self.agent(), instanceId: "i", models: model, events: EventEmitter { e in events.withLock { $0.append(e) } })
        let response = try await harness.session().prompt("crawl")
        #expect(response.text == "finished")

        let requests = model.requests
        let summaries = requests.indices.filter { LoopModel.isSummary(requests[$0]) }
        #expect(summaries.count >= 2, "twelve 400-token results pass a 2 000-token threshold more than once")
        for index in summaries {
            let next = requests[index + 1]
            guard case .user(let text, _)? = next.messages.first else {
                Issue.record("the request after a summary starts with it")
                continue
            }
            #expect(text.contains("<compaction_summary>\nSUMMARY\n</compaction_summary>"))
            if case .toolResult? = next.messages.dropFirst().first { Issue.record("a tool result lost its call") }
            #expect(next.messages.count < requests[index - 1].messages.count)
        }
        // Every request stays under the window the agent declared.
        let largest = requests.filter { !LoopModel.isSummary($0) }.map { request in
            request.messages.reduce(0) { total, message in
                switch message {
                case .user(let text, _): total + text.utf8.count
                case .toolResult(let result): total + result.content.utf8.count
                case .assistant: total
                }
            } / 4
        }.max() ?? 0
        #expect(largest < 3_000, "largest context ≈ \(largest) tokens")
        let reasons = events.withLock { $0 }.compactMap { if case .compactionStart(let s) = $0.body { s.reason } else { nil } }
        #expect(reasons.count == summaries.count && reasons.allSatisfy { $0 == "threshold" })
        // The full history is kept: the prompt, 12 calls with results, the answer.
        #expect(try await harness.session().messages.count == 1 + 12 * 2 + 1)
    }

    @Test func aFailedThresholdSummaryIsLoggedAndTheLoopGoesOn() async throws {
        let model = LoopModel(toolTurns: 8, failSummaries: true)
        let events = Mutex<[FlueEvent]>([])
        let harness = Harness(
            agent: try Self.agent(), instanceId: "i", models: model, events: EventEmitter { e in events.withLock { $0.append(e) } })
        let response = try await harness.session().prompt("crawl")
        #expect(response.text == "finished")
        let logged = events.withLock { $0 }
        let warnings = logged.compactMap { if case .log(let r) = $0.body, r.level == .warn { r.message } else { nil } }
        #expect(!warnings.isEmpty && warnings.allSatisfy { $0.contains("compaction failed, continuing without it") })
        #expect(!logged.contains { $0.type == "compaction" })
        #expect(try await harness.session().currentSnapshot.compaction == nil)
    }
}
