import FlueProviders
import FlueRuntime
import FlueTestSupport
import Foundation
import Testing

/// Compaction through the fake model server on both wires: the threshold before a request, a
/// provider "context too long" answer, `session.compact()`, and a reopened session.
@Suite struct CompactionTests {
    /// A prompt of about 400 tokens (1 600 characters).
    static func longPrompt(_ index: Int) -> String { "p\(index): " + String(repeating: "a", count: 1_600) }

    @Test(arguments: WireAPI.allCases)
    func aLongConversationIsCompactedAndKeepsWorkingAfterAReopen(api: WireAPI) async throws {
        let f = try await Fixture.start()
        // Threshold: 3 000 − 1 000 = 2 000 estimated tokens; about five long prompts pass it.
        let agent = try Agent(
            name: "chatty", model: api.model,
            compaction: CompactionPolicy(contextWindow: 3_000, reserveTokens: 1_000, keepRecentTokens: 400))
        await f.server.state.enqueue(Array(repeating: ScriptedReply.text("Noted."), count: 12))
        let store = InMemorySessionStore()
        let session = try await f.harness(agent, store: store).session()
        var prompts = 0
        while !f.log.types.contains("compaction"), prompts < 8 {
            prompts += 1
            let response = try await session.prompt(Self.longPrompt(prompts))
            #expect(response.text == "Noted.")
        }
        #expect(f.log.types.contains("compaction"), "no compaction within 8 long prompts")
        #expect(prompts == 5, "48 + 5 × 401 tokens pass 2 000 first at the fifth prompt; compacted after \(prompts)")

        let snapshot = await session.currentSnapshot
        let record = try #require(snapshot.compaction)
        #expect(record.summary == "Noted.")
        #expect(record.firstKeptIndex == snapshot.messages.count - 2, "the newest input stays verbatim (its answer follows)")
        #expect(snapshot.messages.count == prompts * 2, "the full history is kept")

        let requests = await f.requests()
        // The summary request: no tools, the summariser's instructions, the older turns as text.
        let summaryRequest = try #require(requests.first { $0.systemPrompt?.contains("checkpoint summaries") == true })
        #expect((summaryRequest.body["tools"]?.arrayValue ?? []).isEmpty)
        let transcript = summaryRequest.userTexts.joined()
        // A 3 000-token window leaves the summariser about 4 000 characters: the middle is left out.
        #expect(transcript.contains("[Assistant]: Noted.") && transcript.contains("left out to fit the summariser's context"))
        #expect(!transcript.contains("p\(prompts): "), "the newest input is not summarised")
        // The request right after it carries the summary and the kept input, not the old turns.
        let after = requests[try #require(requests.lastIndex { $0.systemPrompt?.contains("checkpoint summaries") == true }) + 1]
        #expect(after.userTexts.count == 2)
        #expect(after.userTexts.first?.contains("<compaction_summary>\nNoted.\n</compaction_summary>") == true)
        #expect(after.userTexts.last == Self.longPrompt(prompts))

        let events = f.log.all
        let start = try #require(events.compactMap { if case .compactionStart(let s) = $0.body { s } else { nil } }.first)
        #expect(start.reason == "threshold" && start.estimatedTokens > 2_000)
        let end = try #require(events.compactMap { if case .compaction(let e) = $0.body { e } else { nil } }.first)
        #expect(end.messagesBefore == (prompts - 1) * 2 + 1 && end.messagesAfter == 2)
        #expect(events.contains { if case .turnStart(let t) = $0.body { t.purpose == .compaction } else { false } })

        // The next prompt works, and a reopened session (same store) keeps the compaction.
        #expect(try await session.prompt("short question").text == "Noted.")
        let reopened = try await f.harness(agent, store: store).session()
        #expect(await reopened.currentSnapshot.compaction == record)
        #expect(try await reopened.prompt("another short question").text == "Noted.")
        let last = try #require(await f.requests().last)
        #expect(last.userTexts.first?.contains("<compaction_summary>") == true)
        #expect(!last.userTexts.contains(Self.longPrompt(1)))
    }

    @Test(arguments: WireAPI.allCases)
    func aContextTooLongAnswerCompactsOnceAndRepeatsTheRequest(api: WireAPI) async throws {
        let f = try await Fixture.start()
        // The fake model is not in the catalog: no threshold, only the provider's answer.
        let agent = try Agent(name: "overflow", model: api.model, compaction: CompactionPolicy(keepRecentTokens: 1))
        let tooLong =
            api == .anthropic
            ? "prompt is too long: 250000 tokens > 200000 maximum"
            : "This model's maximum context length is 128000 tokens. However, your messages resulted in 250000 tokens."
        await f.enqueue(
            .text("first answer"),
            .httpError(400, message: tooLong), .text("summary of the start"), .text("second answer"),
            .httpError(400, message: tooLong), .text("summary two"), .httpError(400, message: tooLong))
        let session = try await f.session(agent)
        #expect(try await session.prompt("first question").text == "first answer")
        #expect(try await session.prompt("second question").text == "second answer")
        let requests = await f.requests()
        #expect(requests.count == 4, "answer, refused, summary, the same request again")
        #expect(requests[3].userTexts == [
            "[The earlier part of this conversation was compacted to save context. This summary replaces it; "
                + "the messages after it are verbatim.]\n<compaction_summary>\nsummary of the start\n</compaction_summary>",
            "second question",
        ])
        let starts = f.log.all.compactMap { if case .compactionStart(let s) = $0.body { s.reason } else { nil } }
        #expect(starts == ["overflow"])

        // Refused again after its one compaction: the operation fails and says why.
        let error = await #expect(throws: FlueError.self) { try await session.prompt("third question") }
        #expect(error?.kind == .operationFailed)
        #expect(error?.details["reason"]?["type"] == "context_window_exceeded")
        #expect(await session.currentSnapshot.compaction?.summary == "summary two")
    }

    @Test func compactOnDemandSummarisesAndIsANoOpWithNothingToCut() async throws {
        let f = try await Fixture.start()
        let agent = try Agent(
            name: "manual", model: WireAPI.openai.model, compaction: CompactionPolicy(enabled: false, keepRecentTokens: 1))
        await f.enqueue(.text("one"), .text("two"), .text("the summary"), .text("three"))
        let session = try await f.session(agent)
        _ = try await session.prompt("first")
        _ = try await session.prompt("second")
        #expect(try await session.compact() == true)
        #expect(try await session.compact() == false, "nothing new to summarise")
        let snapshot = await session.currentSnapshot
        #expect(snapshot.compaction?.summary == "the summary")
        #expect(snapshot.compaction?.firstKeptIndex == 3, "the last answer stays verbatim")
        #expect(try await session.prompt("third").text == "three")
        let kinds = f.log.all.compactMap { if case .operationStart(let s) = $0.body { s.operationKind } else { nil } }
        #expect(kinds == [.prompt, .prompt, .compact, .compact, .prompt])
        let reasons = f.log.all.compactMap { if case .compactionStart(let s) = $0.body { s.reason } else { nil } }
        #expect(reasons == ["manual"])
    }
}
