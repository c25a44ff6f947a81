@testable import FlueProviders
import FlueRuntime
import FlueTestSupport
import Foundation
import Synchronization
import Testing

private struct TextArgs: Codable, Sendable { var text: String }

/// Arguments a test tool received, in call order.
private final class Received: Sendable {
    private let state = Mutex<[String]>([])
    func add(_ value: String) { state.withLock { $0.append(value) } }
    var values: [String] { state.withLock { $0 } }
}

/// Raw provider streams, byte for byte, for the cases the fake server's renderer never produces.
private enum Wire {
    static func event(_ type: String, _ json: String) -> String { "event: \(type)\ndata: \(json)\n\n" }
    static func data(_ json: String) -> String { "data: \(json)\n\n" }

    static let anthropicStart = event(
        "message_start",
        #"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-fake","stop_reason":null,"usage":{"input_tokens":3,"output_tokens":1}}}"#
    )
    static func anthropicText(_ escapedPieces: [String], stop: String = "end_turn") -> [String] {
        [anthropicStart, event("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#)]
            + escapedPieces.map {
                event("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\#($0)"}}"#)
            }
            + [
                event("content_block_stop", #"{"type":"content_block_stop","index":0}"#),
                event("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"\#(stop)"},"usage":{"output_tokens":5}}"#),
                event("message_stop", #"{"type":"message_stop"}"#),
            ]
    }
    static func openAIChunk(_ delta: String, finish: String? = nil) -> String {
        let finishText = finish.map { "\"\($0)\"" } ?? "null"
        return data(#"{"id":"c1","object":"chat.completion.chunk","model":"gpt-fake","choices":[{"index":0,"delta":\#(delta),"finish_reason":\#(finishText)}]}"#)
    }
    static func openAIText(_ escapedPieces: [String]) -> [String] {
        escapedPieces.map { openAIChunk(#"{"content":"\#($0)"}"#) } + [openAIChunk("{}", finish: "stop"), data("[DONE]")]
    }
}

@Suite struct WireEdgeCaseTests {
    private func echoTool(_ received: Received) throws -> FunctionTool<TextArgs> {
        try FunctionTool(name: "echo", description: "Echoes text.") { (args: TextArgs) in
            received.add(args.text)
            return "echo: \(args.text)"
        }
    }

    // MARK: issue 10 item 2: Anthropic tool input that arrives whole

    @Test func anthropicToolInputGivenWholeInContentBlockStartIsUsed() async throws {
        let f = try await Fixture.start()
        let received = Received()
        await f.enqueue(
            .raw(
                Wire.anthropicStart,
                Wire.event(
                    "content_block_start",
                    #"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"echo","input":{"text":"whole input"}}}"#
                ),
                Wire.event("content_block_stop", #"{"type":"content_block_stop","index":0}"#),
                Wire.event("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}"#),
                Wire.event("message_stop", #"{"type":"message_stop"}"#)),
            .text("done"))
        let session = try await f.session(try Agent(name: "a", model: WireAPI.anthropic.model, tools: [try echoTool(received)]))

        let response = try await session.prompt("go")

        #expect(received.values == ["whole input"])
        #expect(response.text == "done")
        let second = try #require(await f.requests().last)
        #expect(second.toolResults.map(\.content) == ["echo: whole input"])
    }

    @Test func anthropicInputDeltasWinOverAnInputGivenAtTheStart() async throws {
        let f = try await Fixture.start()
        let received = Received()
        await f.enqueue(
            .raw(
                Wire.anthropicStart,
                Wire.event(
                    "content_block_start",
                    #"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_2","name":"echo","input":{"text":"stale"}}}"#
                ),
                Wire.event(
                    "content_block_delta",
                    #"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"text\": \"strea"}}"#),
                Wire.event(
                    "content_block_delta",
                    #"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"med\"}"}}"#),
                Wire.event("content_block_stop", #"{"type":"content_block_stop","index":0}"#),
                Wire.event("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}"#),
                Wire.event("message_stop", #"{"type":"message_stop"}"#)),
            .text("done"))
        let session = try await f.session(try Agent(name: "a", model: WireAPI.anthropic.model, tools: [try echoTool(received)]))

        _ = try await session.prompt("go")

        #expect(received.values == ["streamed"])
    }

    // MARK: item 3: the provider's final usage wins

    @Test func anthropicMessageDeltaUsageSupersedesMessageStart() async throws {
        let f = try await Fixture.start()
        var stream = Wire.anthropicText(["Hi"])
        stream[stream.count - 2] = Wire.event(
            "message_delta",
            #"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":1200,"cache_read_input_tokens":800,"cache_creation_input_tokens":50,"output_tokens":42}}"#
        )
        await f.enqueue(ScriptedReply(rawStream: stream))
        let session = try await f.session(try Agent(name: "a", model: WireAPI.anthropic.model))

        let response = try await session.prompt("hi")

        #expect(response.usage == Usage(input: 1200, output: 42, cacheRead: 800, cacheWrite: 50))
        #expect(response.usage.totalTokens == 2092)
    }

    @Test func openAILastUsageChunkIsTheFinalFigure() async throws {
        let f = try await Fixture.start()
        await f.enqueue(
            .raw(
                Wire.openAIChunk(#"{"content":"Hi"}"#),
                Wire.data(#"{"id":"c1","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":1}}"#),
                Wire.openAIChunk("{}", finish: "stop"),
                Wire.data(
                    #"{"id":"c1","choices":[],"usage":{"prompt_tokens":2000,"completion_tokens":42,"prompt_tokens_details":{"cached_tokens":800}}}"#
                ),
                Wire.data("[DONE]")))
        let session = try await f.session(try Agent(name: "a", model: WireAPI.openai.model))

        let response = try await session.prompt("hi")

        #expect(response.usage == Usage(input: 1200, output: 42, cacheRead: 800, cacheWrite: 0))
    }

    @Test(arguments: WireAPI.allCases)
    func extremeProviderTokenCountsSaturateInsteadOfTrapping(api: WireAPI) async throws {
        let f = try await Fixture.start()
        let huge = "9223372036854775807"
        switch api {
        case .anthropic:
            var stream = Wire.anthropicText(["Hi"])
            stream[stream.count - 2] = Wire.event(
                "message_delta",
                #"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":\#(huge),"cache_read_input_tokens":\#(huge),"cache_creation_input_tokens":-5,"output_tokens":\#(huge)}}"#
            )
            await f.enqueue(ScriptedReply(rawStream: stream), .text("second"))
        case .openai:
            await f.enqueue(
                .raw(
                    Wire.openAIChunk(#"{"content":"Hi"}"#),
                    Wire.data(#"{"id":"c1","choices":[],"usage":{"prompt_tokens":\#(huge),"completion_tokens":\#(huge),"prompt_tokens_details":{"cached_tokens":-1}}}"#),
                    Wire.data("[DONE]")),
                .text("second"))
        }
        let session = try await f.session(try Agent(name: "a", model: api.model))

        let first = try await session.prompt("hi")
        _ = try await session.prompt("again")

        #expect(first.usage.output == Int.max)
        #expect(first.usage.totalTokens == Int.max)
        #expect(first.usage.cacheWrite == 0, "negative counts read as 0")
        #expect((Usage(input: .max) + Usage(input: 1)).input == .max)
        #expect((Usage(output: .min) + Usage(output: -1)).output == .min)
    }

    // MARK: item 4: a tool call cut off by the token limit is never run

    @Test(arguments: WireAPI.allCases)
    func aToolCallCutOffByTheTokenLimitIsNotRunAndTheModelIsToldWhy(api: WireAPI) async throws {
        let f = try await Fixture.start()
        let received = Received()
        switch api {
        case .anthropic:
            await f.enqueue(
                .raw(
                    Wire.anthropicStart,
                    Wire.event(
                        "content_block_start",
                        #"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_cut","name":"echo","input":{}}}"#
                    ),
                    Wire.event(
                        "content_block_delta",
                        #"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"text\": \"a very long"}}"#
                    ),
                    Wire.event("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":4096}}"#),
                    Wire.event("message_stop", #"{"type":"message_stop"}"#)))
        case .openai:
            await f.enqueue(
                .raw(
                    Wire.openAIChunk(#"{"tool_calls":[{"index":0,"id":"toolu_cut","type":"function","function":{"name":"echo","arguments":""}}]}"#),
                    Wire.openAIChunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"text\": \"a very long"}}]}"#),
                    Wire.openAIChunk("{}", finish: "length"),
                    Wire.data("[DONE]")))
        }
        await f.enqueue(.text("I will be shorter."))
        let session = try await f.session(try Agent(name: "a", model: api.model, tools: [try echoTool(received)]))

        let response = try await session.prompt("write a lot")

        #expect(received.values.isEmpty, "the truncated call never ran")
        #expect(response.text == "I will be shorter.")
        let ends = f.log.all.compactMap { if case .tool(let end) = $0.body { end } else { nil } }
        #expect(ends.count == 1)
        #expect(ends.first?.isError == true)
        #expect(ends.first?.toolCallId == "toolu_cut")
        #expect(ends.first?.result.contains("output token limit") == true, "\(ends)")
        #expect(ends.first?.result.contains("nothing was executed") == true)
        let turns = f.log.all.compactMap { if case .turn(let turn) = $0.body { turn } else { nil } }
        #expect(turns.first?.stopReason == .length)
        let second = try #require(await f.requests().last)
        let result = try #require(second.toolResults.first)
        #expect(result.id == "toolu_cut")
        #expect(result.content.contains("output token limit"))
        #expect(!result.content.contains("expected"), "not a type-validation message")
        if api == .anthropic {
            #expect(result.isError)
            let replayed = (second.body["messages"]?.arrayValue ?? []).flatMap { $0["content"]?.arrayValue ?? [] }
                .first { $0["type"] == "tool_use" }
            #expect(replayed?["input"] == ["unparsed_arguments": #"{"text": "a very long"#], "never replayed as {}")
        } else {
            let replayed = (second.body["messages"]?.arrayValue ?? []).compactMap { $0["tool_calls"]?.arrayValue?.first }.first
            #expect(replayed?["function"]?["arguments"] == #"{"text": "a very long"#)
        }
    }

    // MARK: item 5: OpenAI parallel calls that share index 0

    @Test func openAIParallelCallsSharingIndexZeroAreToldApartByTheirIds() async throws {
        let f = try await Fixture.start()
        let received = Received()
        await f.enqueue(
            .raw(
                Wire.openAIChunk(#"{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"echo","arguments":""}}]}"#),
                Wire.openAIChunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"text\":\"red green\"}"}}]}"#),
                Wire.openAIChunk(#"{"tool_calls":[{"index":0,"id":"call_b","type":"function","function":{"name":"echo","arguments":""}}]}"#),
                Wire.openAIChunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"text\":\"one two three\"}"}}]}"#),
                Wire.openAIChunk("{}", finish: "tool_calls"),
                Wire.data("[DONE]")),
            .text("both done"))
        let session = try await f.session(try Agent(name: "a", model: WireAPI.openai.model, tools: [try echoTool(received)]))

        let response = try await session.prompt("go")

        #expect(response.text == "both done")
        #expect(received.values.sorted() == ["one two three", "red green"])
        let second = try #require(await f.requests().last)
        #expect(second.toolResults.map(\.id) == ["call_a", "call_b"])
        #expect(second.toolResults.map(\.content) == ["echo: red green", "echo: one two three"])
    }

    // MARK: item 6: the last event without its blank line

    @Test(arguments: WireAPI.allCases)
    func aFinalEventWithoutItsBlankLineStillCompletesTheMessage(api: WireAPI) async throws {
        let f = try await Fixture.start()
        var stream = api == .anthropic ? Wire.anthropicText(["Complete ", "answer"]) : Wire.openAIText(["Complete ", "answer"])
        // `event: message_stop` / `data: {...}` (or `data: [DONE]`) and its line break, then end of body.
        stream[stream.count - 1] = String(stream[stream.count - 1].dropLast(1))
        await f.enqueue(ScriptedReply(rawStream: stream))
        let session = try await f.session(try Agent(name: "a", model: api.model))

        let response = try await session.prompt("hi")

        #expect(response.text == "Complete answer")
        #expect(await f.requests().count == 1, "not retried as an incomplete stream")
    }

    @Test(arguments: WireAPI.allCases)
    func aFinalEventWithoutAnyLineBreakStillCompletesTheMessage(api: WireAPI) async throws {
        let f = try await Fixture.start()
        var stream = api == .anthropic ? Wire.anthropicText(["Done"]) : Wire.openAIText(["Done"])
        stream[stream.count - 1] = String(stream[stream.count - 1].dropLast(2))
        await f.enqueue(ScriptedReply(rawStream: stream))
        let session = try await f.session(try Agent(name: "a", model: api.model))

        #expect(try await session.prompt("hi").text == "Done")
        #expect(await f.requests().count == 1)
    }

    // MARK: item 7a: refusals are surfaced

    @Test func openAIRefusalIsTheAnswerTextWithStopReasonRefusal() async throws {
        let f = try await Fixture.start()
        await f.enqueue(
            .raw(
                Wire.openAIChunk(#"{"role":"assistant","content":null,"refusal":"I can't "}"#),
                Wire.openAIChunk(#"{"refusal":"help with that."}"#),
                Wire.openAIChunk("{}", finish: "stop"),
                Wire.data("[DONE]")))
        let session = try await f.session(try Agent(name: "a", model: WireAPI.openai.model))

        let response = try await session.prompt("do something bad")

        #expect(response.text == "I can't help with that.")
        let deltas = f.log.all.compactMap { if case .textDelta(let d) = $0.body { d.delta } else { nil } }
        #expect(deltas == ["I can't ", "help with that."])
        let turns = f.log.all.compactMap { if case .turn(let turn) = $0.body { turn } else { nil } }
        #expect(turns.map(\.stopReason) == [.refusal])
    }

    @Test func anthropicRefusalStopReasonIsReported() async throws {
        let f = try await Fixture.start()
        await f.enqueue(ScriptedReply(rawStream: Wire.anthropicText(["I won't do that."], stop: "refusal")))
        let session = try await f.session(try Agent(name: "a", model: WireAPI.anthropic.model))

        let response = try await session.prompt("do something bad")

        #expect(response.text == "I won't do that.")
        let turns = f.log.all.compactMap { if case .turn(let turn) = $0.body { turn } else { nil } }
        #expect(turns.map(\.stopReason) == [.refusal])
    }

    // MARK: item 7b: a surrogate pair split across chunks, and chunks that are not JSON

    @Test(arguments: WireAPI.allCases)
    func aSurrogatePairSplitAcrossChunksDecodesLeniently(api: WireAPI) async throws {
        let f = try await Fixture.start()
        let pieces = [#"Smile \ud83d"#, #"\ude00 please"#]
        await f.enqueue(ScriptedReply(rawStream: api == .anthropic ? Wire.anthropicText(pieces) : Wire.openAIText(pieces)))
        let session = try await f.session(try Agent(name: "a", model: api.model))

        let response = try await session.prompt("hi")

        #expect(response.text == "Smile \u{FFFD}\u{FFFD} please")
    }

    @Test(arguments: WireAPI.allCases)
    func aChunkThatIsNotJSONIsAProviderErrorNotASilentSkip(api: WireAPI) async throws {
        let f = try await Fixture.start()
        let broken = api == .anthropic ? Wire.event("content_block_delta", #"{"type":"content_bl"#) : Wire.data(#"{"choices":[{"delta":"#)
        for _ in 0..<3 { await f.enqueue(ScriptedReply(rawStream: [broken])) }
        let session = try await f.session(try Agent(name: "a", model: api.model))

        let error = try await #require(throws: FlueError.self) { try await session.prompt("hi") }

        #expect(error.message.contains("not valid JSON"), "\(error.message)")
        #expect(error.message.contains(api == .anthropic ? "anthropic" : "openai"))
        #expect(await f.requests().count == 3, "retried like any broken stream before output")
    }

    @Test(arguments: WireAPI.allCases)
    func aBrokenChunkAfterOutputFailsTheTurnWithTheReason(api: WireAPI) async throws {
        let f = try await Fixture.start()
        var stream = api == .anthropic ? Wire.anthropicText(["Hello ", "world"]) : Wire.openAIText(["Hello ", "world"])
        stream.insert(api == .anthropic ? Wire.event("content_block_delta", "{oops") : Wire.data("{oops"), at: 3)
        await f.enqueue(ScriptedReply(rawStream: stream))
        let session = try await f.session(try Agent(name: "a", model: api.model))

        let error = try await #require(throws: FlueError.self) { try await session.prompt("hi") }

        #expect(error.message.contains("not valid JSON"), "\(error.message)")
        #expect(await f.requests().count == 1, "output had started: never retried")
    }

    // MARK: trapping arithmetic on provider numbers: Retry-After

    @Test func retryAfterDelaysAreCappedAndNeverTrap() {
        let policy = RetryPolicy(maxRetries: 3, baseDelay: .seconds(1), maxDelay: .seconds(20))
        #expect(policy.delay(beforeRetry: 1, retryAfterSeconds: 0.25) == .milliseconds(250))
        #expect(policy.delay(beforeRetry: 1, retryAfterSeconds: 1e300) == .seconds(20))
        #expect(policy.delay(beforeRetry: 1, retryAfterSeconds: .infinity) == .seconds(20))
        #expect(policy.delay(beforeRetry: 1, retryAfterSeconds: 20) == .seconds(20))
        for odd: Double in [.nan, -3, -Double.infinity] {
            let delay = policy.delay(beforeRetry: 2, retryAfterSeconds: odd)
            #expect(delay >= .milliseconds(1500) && delay <= .seconds(2), "\(odd) falls back to the backoff: \(delay)")
        }
        #expect(policy.delay(beforeRetry: .max, retryAfterSeconds: nil) == .seconds(20))
    }

    @Test(arguments: ["1e300", "inf", "nan", "-3", "Wed, 21 Oct 2026 07:28:00 GMT", "99999999999999999999"])
    func anyRetryAfterValueIsSafe(value: String) async throws {
        let f = try await Fixture.start()
        await f.enqueue(ScriptedReply(status: 429, retryAfterText: value), .text("after the wait"))
        let session = try await f.session(try Agent(name: "a", model: WireAPI.anthropic.model))

        let started = ContinuousClock.now
        let response = try await session.prompt("hi")

        #expect(response.text == "after the wait")
        #expect(ContinuousClock.now - started < .seconds(10), "capped by the policy's maxDelay (50 ms here)")
    }
}
