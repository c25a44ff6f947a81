@testable import FlueRuntime
import Testing

/// The pure rules of compaction: the catalog, the reserve, where the history is cut.
@Suite struct CompactionRulesTests {
    @Test func theCatalogKnowsTheDocumentedModelsAndTheirSnapshots() {
        #expect(ModelCatalog.limits(for: "anthropic/claude-sonnet-4-6")?.contextWindow == 1_000_000)
        #expect(ModelCatalog.limits(for: "anthropic/claude-haiku-4-5-20251001")?.maxOutputTokens == 64_000)
        #expect(ModelCatalog.limits(for: "openai/gpt-4.1-mini-2025-04-14")?.contextWindow == 1_047_576)
        #expect(ModelCatalog.limits(for: "openai/gpt-4o-mini")?.maxOutputTokens == 16_384)
        #expect(ModelCatalog.limits(for: "ollama/llama3.2") == nil)
        #expect(ModelCatalog.limits(for: "openai/gpt-4.10") == nil, "a prefix must end at a dash")
    }

    @Test func theThresholdFollowsTheWindowAndTheReserve() {
        #expect(CompactionPolicy.automatic.threshold(for: "anthropic/claude-sonnet-4-5") == 180_000)
        #expect(CompactionPolicy.automatic.threshold(for: "openai/gpt-4o") == 128_000 - 16_384)
        #expect(CompactionPolicy(contextWindow: 6_000).threshold(for: "x/unknown") == 4_000, "a third of a small window")
        #expect(CompactionPolicy(contextWindow: 3_000).threshold(for: "x/unknown") == 1_976, "at least 1 024")
        #expect(CompactionPolicy(contextWindow: 3_000, reserveTokens: 500).threshold(for: "x/unknown") == 2_500)
        #expect(CompactionPolicy.automatic.threshold(for: "x/unknown") == nil)
        #expect(CompactionPolicy.disabled.threshold(for: "anthropic/claude-sonnet-4-5") == nil)
    }

    @Test func theCutKeepsRecentMessagesAndNeverSplitsACallFromItsResult() {
        let model: ModelSpecifier = "x/y"
        let call = ToolCall(id: "c1", name: "read", arguments: ["path": "notes.md"])
        let history: [Message] = [
            .user(text: String(repeating: "u", count: 400), images: []),  // 100 tokens
            .assistant(AssistantMessage(content: [.toolCall(call)], stopReason: .toolUse, usage: Usage(), model: model)),
            .toolResult(ToolResultMessage(toolCallId: "c1", toolName: "read", content: String(repeating: "r", count: 400), isError: false)),
            .assistant(AssistantMessage(content: [.text(String(repeating: "a", count: 40))], stopReason: .stop, usage: Usage(), model: model)),
            .user(text: String(repeating: "q", count: 40), images: []),
        ]
        // 10 + 10 tokens of the newest two, then the tool result would cross 100: the cut moves
        // back to the call that produced it.
        #expect(Compactor.cutIndex(history, from: 0, keepRecentTokens: 100) == 1)
        #expect(Compactor.cutIndex(history, from: 0, keepRecentTokens: 15) == 3)
        #expect(Compactor.cutIndex(history, from: 0, keepRecentTokens: 1) == 4, "the newest message always stays")
        #expect(Compactor.cutIndex(history, from: 0, keepRecentTokens: 10_000) == nil, "everything fits: nothing to cut")
        #expect(Compactor.cutIndex(history, from: 4, keepRecentTokens: 1) == nil)
        #expect(Compactor.files(history[0..<3]).read == ["notes.md"])
    }

    @Test func anInvalidPolicyIsRefusedAtDefinition() {
        #expect(throws: FlueError.self) { try Agent(name: "a", compaction: CompactionPolicy(contextWindow: 0)) }
        #expect(throws: FlueError.self) { try Agent(name: "a", compaction: CompactionPolicy(keepRecentTokens: -1)) }
        #expect(throws: FlueError.self) {
            try Agent(name: "a", compaction: CompactionPolicy(contextWindow: 1_000, reserveTokens: 1_000))
        }
        #expect(throws: FlueError.self) { try Agent(name: "a", maxTaskDepth: -1) }
    }

    @Test func theTranscriptFitsItsBudgetKeepingTheStartAndTheEnd() {
        let messages = (0..<20).map { Message.user(text: "m\($0) " + String(repeating: "x", count: 100), images: []) }
        let full = Compactor.transcript(messages)
        #expect(full.contains("[User]: m0 ") && full.contains("[User]: m19 ") && !full.contains("left out"))
        let fitted = Compactor.transcript(messages, maxCharacters: 1_000)
        #expect(fitted.count <= 1_100, "\(fitted.count) characters")
        #expect(fitted.hasPrefix("[User]: m0 ") && fitted.contains("[User]: m1 ") && !fitted.contains("[User]: m2 "))
        #expect(fitted.contains("[… 12 message(s) left out to fit the summariser's context …]"))
        #expect(fitted.hasSuffix(String(repeating: "x", count: 100)) && fitted.contains("[User]: m14 "))
        let long = Compactor.transcript([.user(text: String(repeating: "y", count: 20_000), images: [])])
        #expect(long.count == "[User]: ".count + 8_000 + " [… cut]".count)
        #expect(CompactionPolicy(contextWindow: 3_000).transcriptCharacters(for: "x/y") == 4_000, "a floor for tiny windows")
        #expect(CompactionPolicy.automatic.transcriptCharacters(for: "x/unknown") == nil)
    }
}
