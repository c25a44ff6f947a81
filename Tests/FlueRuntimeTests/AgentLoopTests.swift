import FlueRuntime
import FlueTestSupport
import Synchronization
import Testing

/// The agent loop against an in-process scripted model: no sockets, no wire protocol.
@Suite struct AgentLoopTests {
    struct AddArguments: Codable, Sendable {
        var a: Int
        var b: Int
    }

    /// How often the tool ran.
    final class Calls: Sendable {
        private let count = Mutex(0)
        var value: Int { count.withLock { $0 } }
        func add() { count.withLock { $0 += 1 } }
    }

    static func adder(_ calls: Calls) throws -> FunctionTool<AddArguments> {
        try FunctionTool(name: "add", description: "Adds two whole numbers.") { (args: AddArguments) in
            calls.add()
            return String(args.a + args.b)
        }
    }

    @Test func aToolCallRunsOnceAndItsResultGoesBackToTheModel() async throws {
        let calls = Calls()
        let model = ScriptedModel([.toolCalls([(name: "add", arguments: ["a": 2, "b": 3])]), .text("The sum is 5.")])
        let agent = try Agent(name: "calculator", instructions: "Add.", tools: [Self.adder(calls)])
        let session = try await Harness(agent: agent, instanceId: "t1", models: model).session()

        let response = try await session.prompt("What is 2 + 3?")

        #expect(response.text == "The sum is 5.")
        #expect(calls.value == 1, "the tool ran once")
        let requests = model.requests
        #expect(requests.count == 2)
        #expect(requests.first?.tools.contains { $0.name == "add" } == true, "the model was offered the tool")
        let results = requests.last?.messages.compactMap { message -> ToolResultMessage? in
            if case .toolResult(let result) = message { result } else { nil }
        }
        #expect(results?.map(\.content) == ["5"])
        #expect(results?.first?.toolCallId == "call_1" && results?.first?.isError == false)
        #expect(await session.messages.count == 4, "user, assistant tool call, tool result, assistant answer")
    }

    @Test func badToolArgumentsGoBackToTheModelAsAnErrorResult() async throws {
        let calls = Calls()
        let model = ScriptedModel([.toolCalls([(name: "add", arguments: ["a": "two", "b": 3])]), .text("Sorry.")])
        let agent = try Agent(name: "calculator", instructions: "Add.", tools: [Self.adder(calls)])
        let session = try await Harness(agent: agent, instanceId: "t2", models: model).session()

        let response = try await session.prompt("What is two + 3?")

        #expect(response.text == "Sorry.")
        #expect(calls.value == 0, "the tool never ran with arguments that do not decode")
        let result = model.requests.last?.messages.compactMap { message -> ToolResultMessage? in
            if case .toolResult(let result) = message { result } else { nil }
        }.first
        #expect(result?.isError == true)
    }

    /// A model failure surfaces as `operation_failed` naming the operation, with the model's own
    /// error as its `reason`.
    @Test func aModelFailureSurfacesAsOperationFailedWithItsReason() async throws {
        let model = ScriptedModel([.failure(FlueError(.modelRequestFailed, "the provider answered 500"))])
        let agent = try Agent(name: "calculator", instructions: "Add.")
        let session = try await Harness(agent: agent, instanceId: "t3", models: model).session()
        let error = await #expect(throws: FlueError.self) { try await session.prompt("Hi") }
        #expect(error?.kind == .operationFailed)
        #expect(error?.details["operation"]?.stringValue == "prompt")
        #expect(error?.details["reason"]?["type"]?.stringValue == "model_request_failed")
        #expect(error?.message.contains("the provider answered 500") == true)
    }
}
