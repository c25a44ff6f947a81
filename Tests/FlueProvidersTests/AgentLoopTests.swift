import FlueProviders
import FlueRuntime
import FlueTestSupport
import Foundation
import Synchronization
import Testing

private struct CityArgs: Codable, Sendable {
    var city: String
}

/// Counts calls and records arguments of a test tool.
private final class Calls: Sendable {
    private let state = Mutex<[String]>([])
    func add(_ value: String) { state.withLock { $0.append(value) } }
    var values: [String] { state.withLock { $0 } }
}

@Suite struct AgentLoopTests {
    @Test(arguments: WireAPI.allCases)
    func textPromptStreamsDeltasAndEmitsOrderedEvents(api: WireAPI) async throws {
        let f = try await Fixture.start()
        await f.enqueue(.text("Bonjour tout le monde"))
        let agent = try Agent(name: "greeter", model: api.model, instructions: "Answer in French.")
        let session = try await f.session(agent)

        let response = try await session.prompt("Say hello")

        #expect(response.text == "Bonjour tout le monde")
        #expect(response.model == api.model)
        #expect(response.usage.input > 0)
        #expect(response.usage.output > 0)
        #expect(
            f.log.skeleton == [
                "operation_start", "agent_start", "turn_start", "turn", "agent_end", "operation", "idle",
            ])
        let deltas = f.log.all.compactMap { if case .textDelta(let d) = $0.body { d.delta } else { nil } }
        #expect(deltas == ["Bonjour ", "tout ", "le ", "monde"])
        #expect(f.log.all.map(\.eventIndex) == Array(0..<f.log.all.count))
        let opIds = Set(f.log.all.compactMap(\.correlation.operationId))
        #expect(opIds.count == 1)
        #expect(f.log.all.allSatisfy { $0.correlation.runId == "run_test" && $0.correlation.session == "default" })
        let turnIds = Set(f.log.all.compactMap(\.correlation.turnId))
        #expect(turnIds.count == 1)
        if case .operation(let end) = f.log.all.first(where: { $0.type == "operation" })?.body {
            #expect(end.isError == false)
            #expect(end.result?["text"] == "Bonjour tout le monde")
        } else {
            Issue.record("no operation event")
        }

        let request = try #require(await f.requests().first)
        #expect(request.userTexts == ["Say hello"])
        #expect(request.systemPrompt?.contains("Answer in French.") == true)
        #expect(request.body["stream"] == true)
        switch api {
        case .anthropic:
            #expect(request.path == "/v1/messages")
            #expect(request.headers["x-api-key"] == "test-anthropic-key")
            #expect(request.headers["anthropic-version"] == "2023-06-01")
            #expect(request.body["model"] == "claude-fake")
        case .openai:
            #expect(request.path == "/v1/chat/completions")
            #expect(request.headers["authorization"] == "Bearer test-openai-key")
            #expect(request.body["stream_options"]?["include_usage"] == true)
        }
    }

    @Test(arguments: WireAPI.allCases)
    func toolCallWithStreamedArgumentsRunsTheToolAndReturnsItsResult(api: WireAPI) async throws {
        let f = try await Fixture.start()
        let calls = Calls()
        let weather = try FunctionTool(name: "weather", description: "Weather in a city") { (args: CityArgs) in
            calls.add(args.city)
            return "Sunny in \(args.city)"
        }
        await f.enqueue(.toolCall("weather", ["city": "Paris"], text: "Let me check."), .text("It is sunny."))
        let session = try await f.session(try Agent(name: "a", model: api.model, tools: [weather]))

        let response = try await session.prompt("Weather in Paris?")

        #expect(response.text == "It is sunny.")
        #expect(calls.values == ["Paris"])
        let requests = await f.requests()
        #expect(requests.count == 2)
        #expect(requests[0].toolSchema("weather")?["required"] == ["city"])
        let results = requests[1].toolResults
        #expect(results.count == 1)
        #expect(results.first?.content == "Sunny in Paris")
        #expect(results.first?.isError == false)
        #expect(
            f.log.skeleton == [
                "operation_start", "agent_start", "turn_start", "turn", "tool_start", "tool", "turn_start", "turn",
                "agent_end", "operation", "idle",
            ])
        if case .toolStart(let start) = f.log.all.first(where: { $0.type == "tool_start" })?.body {
            #expect(start.args == ["city": "Paris"])
            #expect(start.toolName == "weather")
        }
        let messages = await session.messages
        #expect(messages.count == 4)  // user, assistant(tool call), tool result, assistant
    }

    @Test(arguments: WireAPI.allCases)
    func parallelToolCallsRunConcurrentlyAndResultsKeepCallOrder(api: WireAPI) async throws {
        let f = try await Fixture.start()
        // Each call waits until both have started: this only completes if they run concurrently.
        let started = Mutex(0)
        let slowTool = try FunctionTool(name: "lookup", description: "Looks a city up") { (args: CityArgs) in
            started.withLock { $0 += 1 }
            let deadline = ContinuousClock.now + .seconds(5)
            while started.withLock({ $0 }) < 2 {
                guard ContinuousClock.now < deadline else { return "timed out waiting for the other call" }
                try await Task.sleep(for: .milliseconds(5))
            }
            if args.city == "Oslo" { try await Task.sleep(for: .milliseconds(50)) }  // finishes last
            return "found \(args.city)"
        }
        await f.enqueue(
            .toolCalls([
                ScriptedToolCall(name: "lookup", arguments: ["city": "Oslo"]),
                ScriptedToolCall(name: "lookup", arguments: ["city": "Rome"]),
            ]), .text("Both found."))
        let session = try await f.session(try Agent(name: "a", model: api.model, tools: [slowTool]))

        _ = try await session.prompt("Find Oslo and Rome")

        let results = try #require(await f.requests().last).toolResults
        #expect(results.map(\.content) == ["found Oslo", "found Rome"])
        let toolEnds = f.log.all.compactMap { if case .tool(let t) = $0.body { t.result } else { nil } }
        #expect(toolEnds == ["found Rome", "found Oslo"])  // completion order, emitted as they finish
    }

    @Test(arguments: WireAPI.allCases)
    func invalidToolArgumentsGoBackToTheModelAsAnErrorResult(api: WireAPI) async throws {
        let f = try await Fixture.start()
        let calls = Calls()
        let weather = try FunctionTool(name: "weather", description: "Weather") { (args: CityArgs) in
            calls.add(args.city)
            return "ok"
        }
        await f.enqueue(
            .toolCall("weather", ["town": "Paris"]),
            ScriptedReply(toolCalls: [ScriptedToolCall(name: "weather", rawArguments: "{\"city\": \"Par")]),
            .toolCall("nonexistent", [:]),
            .text("I give up on tools."))
        let session = try await f.session(try Agent(name: "a", model: api.model, tools: [weather]))

        let response = try await session.prompt("Weather?")

        #expect(response.text == "I give up on tools.")
        #expect(calls.values.isEmpty)
        let requests = await f.requests()
        #expect(requests.count == 4)
        let missingKey = try #require(requests[1].toolResults.last)
        #expect(missingKey.content.contains("invalid arguments for tool weather"))
        #expect(missingKey.content.contains("arguments.city"))
        if api == .anthropic { #expect(missingKey.isError) }
        let malformed = try #require(requests[2].toolResults.last)
        #expect(malformed.content.contains("invalid arguments for tool weather"))
        let unknown = try #require(requests[3].toolResults.last)
        #expect(unknown.content.contains("unknown tool nonexistent"))
        let toolEvents = f.log.all.compactMap { if case .tool(let t) = $0.body { t } else { nil } }
        #expect(toolEvents.count == 3)
        #expect(toolEvents.allSatisfy { $0.isError })
    }

    @Test(arguments: WireAPI.allCases)
    func maxTurnsGuardStopsAModelThatNeverStops(api: WireAPI) async throws {
        let f = try await Fixture.start()
        let echo = try FunctionTool(name: "echo", description: "Echo") { (args: CityArgs) in args.city }
        for _ in 0..<3 { await f.enqueue(.toolCall("echo", ["city": "again"])) }
        let session = try await f.session(try Agent(name: "a", model: api.model, tools: [echo], maxTurns: 3))

        let error = try await #require(throws: FlueError.self) { try await session.prompt("Loop forever") }

        #expect(error.type == "max_turns_exceeded")
        #expect(await f.requests().count == 3)
        #expect(f.log.types.suffix(2) == ["operation", "idle"])
    }

    @Test(arguments: WireAPI.allCases)
    func historyCarriesOverBetweenPromptsAndSurvivesReopening(api: WireAPI) async throws {
        let f = try await Fixture.start()
        let store = InMemorySessionStore()
        let agent = try Agent(name: "a", model: api.model)
        await f.enqueue(.text("Nice to meet you, Ada."), .text("Your name is Ada."))
        let first = try await f.harness(agent, store: store).session()
        _ = try await first.prompt("My name is Ada.")

        // A new harness over the same store continues the stored conversation.
        let reopened = try await f.harness(agent, store: store).session()
        let answer = try await reopened.prompt("What is my name?")

        #expect(answer.text == "Your name is Ada.")
        let second = try #require(await f.requests().last)
        #expect(second.userTexts == ["My name is Ada.", "What is my name?"])
        let stored = try #require(await store.loadSession(SessionKey(agent: "a", instanceId: "instance-1")))
        #expect(stored.messages.count == 4)
        // Another agent with the same instance id does not see it.
        #expect(await store.loadSession(SessionKey(agent: "b", instanceId: "instance-1")) == nil)
    }

    @Test func thinkingBlocksStreamAsEventsAndTheSignatureIsReplayed() async throws {
        let f = try await Fixture.start()
        let echo = try FunctionTool(name: "echo", description: "Echo") { (args: CityArgs) in args.city }
        await f.enqueue(
            ScriptedReply(thinking: "I should call echo.", toolCalls: [ScriptedToolCall(name: "echo", arguments: ["city": "x"])]),
            .text("done"))
        let session = try await f.session(
            try Agent(name: "a", model: WireAPI.anthropic.model, tools: [echo], thinking: .low))

        _ = try await session.prompt("Think first")

        #expect(f.log.types.contains("thinking_start"))
        #expect(f.log.types.contains("thinking_end"))
        let thinking = f.log.all.compactMap { if case .thinkingDelta(let d) = $0.body { d.delta } else { nil } }.joined()
        #expect(thinking == "I should call echo.")
        let requests = await f.requests()
        #expect(requests[0].body["thinking"]?["type"] == "enabled")
        let replayed = requests[1].body["messages"]?.arrayValue?[1]["content"]?.arrayValue?.first
        #expect(replayed?["type"] == "thinking")
        #expect(replayed?["signature"] == "sig-fake")
    }

    @Test(arguments: WireAPI.allCases)
    func subagentTasksRunInAChildSessionWithTheirOwnInstructions(api: WireAPI) async throws {
        let f = try await Fixture.start()
        let researcher = try Agent(
            name: "researcher", description: "Finds facts", instructions: "You are the researcher.")
        let lead = try Agent(name: "lead", model: api.model, instructions: "You lead.", subagents: [researcher])
        await f.enqueue(
            .toolCall("task", ["prompt": "Find the capital of France", "agent": "researcher"]),
            .text("Paris is the capital."),
            .text("The researcher says Paris."))
        let session = try await f.session(lead)

        let response = try await session.prompt("What is the capital of France?")

        #expect(response.text == "The researcher says Paris.")
        let requests = await f.requests()
        #expect(requests.count == 3)
        #expect(requests[0].toolNames.contains("task"))
        #expect(requests[1].systemPrompt?.contains("You are the researcher.") == true)
        #expect(requests[1].userTexts == ["Find the capital of France"])
        #expect(requests[2].toolResults.first?.content == "Paris is the capital.")
        let taskStart = try #require(f.log.all.first { $0.type == "task_start" })
        let childEvents = f.log.all.filter { $0.correlation.parentSession == "default" }
        #expect(!childEvents.isEmpty)
        #expect(childEvents.allSatisfy { $0.correlation.taskId != nil && $0.correlation.session?.hasPrefix("task:default:") == true })
        #expect(f.log.types.contains("task"))
        #expect(taskStart.correlation.session == "default")
    }

    @Test(arguments: WireAPI.allCases)
    func tasksNestFourDeepAndTheFifthIsRefused(api: WireAPI) async throws {
        let f = try await Fixture.start()
        // lead → level1 → level2 → level3 → level4, each delegating to the next; level4's own
        // delegation (to level5) would be the fifth level.
        var profile = try Agent(name: "level5", description: "too deep")
        for level in stride(from: 4, through: 1, by: -1) {
            profile = try Agent(name: "level\(level)", description: "level \(level)", subagents: [profile])
        }
        let lead = try Agent(name: "lead", model: api.model, subagents: [profile])
        for level in 1...5 {
            await f.enqueue(.toolCall("task", ["prompt": "go deeper", "agent": .string("level\(level)")]))
        }
        for answer in ["level4 stopped", "level3 done", "level2 done", "level1 done", "all done"] {
            await f.enqueue(.text(answer))
        }
        let response = try await f.session(lead).prompt("Delegate as deep as you can")
        #expect(response.text == "all done")
        let requests = await f.requests()
        #expect(requests.count == 10, "five delegations, the fifth refused without a model call, five answers")
        let refused = try #require(requests[5].toolResults.last)
        #expect(refused.content.contains("task_depth_exceeded") && refused.content.contains("at most 4 deep"), "\(refused.content)")
        #expect(requests[4].toolNames.contains("task"), "level4 declares level5, so it has the task tool")
        let starts = f.log.all.filter { $0.type == "task_start" }.count
        let ends = f.log.all.compactMap { if case .task(let end) = $0.body { end.isError } else { nil } }
        #expect(starts == 4 && ends == [false, false, false, false], "the refused task never started")
    }

    @Test func aSubagentWithoutSubagentsHasNoTaskTool() async throws {
        let f = try await Fixture.start()
        let lead = try Agent(name: "lead", model: WireAPI.openai.model, subagents: [try Agent(name: "leaf")])
        await f.enqueue(.text("leaf answer"))
        let answer = try await f.session(lead).task("work", agent: "leaf")
        #expect(answer.text == "leaf answer")
        var flat = lead
        flat.maxTaskDepth = 0
        let refused = await #expect(throws: FlueError.self) { try await f.session(flat).task("work", agent: "leaf") }
        #expect(refused?.kind == .taskDepthExceeded && refused?.details["maxTaskDepth"] == 0)
        let request = try #require(await f.requests().first)
        #expect(!request.toolNames.contains("task"))
        let error = await #expect(throws: FlueError.self) { try await f.session(lead).task("work", agent: "nobody") }
        #expect(error?.kind == .subagentNotDeclared)
    }

    @Test func aSecondConcurrentOperationIsRejectedAsBusy() async throws {
        let f = try await Fixture.start()
        await f.enqueue(ScriptedReply(text: "slow answer here", chunkDelayMs: 100))
        let session = try await f.session(try Agent(name: "a", model: WireAPI.anthropic.model))
        async let first = session.prompt("first")
        try await eventually { await f.server.state.requests().count == 1 }
        let error = try await #require(throws: FlueError.self) { try await session.prompt("second") }
        #expect(error.type == "session_busy")
        #expect(try await first.text == "slow answer here")
    }
}
