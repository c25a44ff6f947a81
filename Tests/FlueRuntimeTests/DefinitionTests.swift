import Foundation
import Testing

@testable import FlueRuntime

private struct CityArgs: Codable, Sendable {
    var city: String
    var days: Int?
}

@Suite struct DefinitionTests {
    @Test func parsesModelSpecifiersAtTheFirstSlash() throws {
        let spec = try ModelSpecifier(parsing: "openrouter/moonshotai/kimi-k2")
        #expect(spec.provider == "openrouter")
        #expect(spec.model == "moonshotai/kimi-k2")
        #expect(spec.description == "openrouter/moonshotai/kimi-k2")
        for bad in ["", "anthropic", "/model", "anthropic/"] {
            let error = try #require(throws: FlueError.self) { try ModelSpecifier(parsing: bad) }
            #expect(error.type == "invalid_model_specifier")
        }
    }

    @Test func functionToolDerivesSchemaAndReportsInvalidArguments() async throws {
        let tool = try FunctionTool(name: "weather", description: "Weather for a city") { (args: CityArgs) in
            "\(args.city):\(args.days ?? 1)"
        }
        #expect(tool.parameters.value["required"] == ["city"])
        let context = ToolContext(toolCallId: "c", session: "default", log: { _, _ in })
        #expect(try await tool.call(["city": "Paris", "days": 3], context: context) == "Paris:3")
        let error = try await #require(throws: FlueError.self) {
            try await tool.call(["city": 5], context: context)
        }
        #expect(error.type == "tool_input_validation")
        #expect(error.message.contains("arguments.city"))
        #expect(error.details["issues"]?.arrayValue?.first?["path"] == "city")
        let missing = try await #require(throws: FlueError.self) { try await tool.call([:], context: context) }
        #expect(missing.message.contains("missing required property"))
    }

    @Test func rejectsBadDefinitions() throws {
        #expect(throws: FlueError.self) {
            try FunctionTool(name: "1bad", description: "x") { (_: CityArgs) in "" }
        }
        #expect(throws: FlueError.self) {
            try FunctionTool(name: "ok", description: "  ") { (_: CityArgs) in "" }
        }
        let tool = try FunctionTool(name: "weather", description: "Weather") { (_: CityArgs) in "" }
        let duplicate = try #require(throws: FlueError.self) {
            try Agent(name: "a", tools: [tool, tool])
        }
        #expect(duplicate.type == "tool_name_conflict")
        let reserved = try FunctionTool(name: "finish", description: "mine") { (_: CityArgs) in "" }
        #expect(throws: FlueError.self) { try Agent(name: "a", tools: [reserved]) }
        #expect(throws: FlueError.self) { try Agent(name: "has space") }
    }

    @Test func sessionSnapshotsRoundTripThroughJSON() throws {
        let snapshot = SessionSnapshot(
            messages: [
                .user(text: "hi", images: [ImageContent(data: "aGk=", mimeType: "image/png")]),
                .assistant(
                    AssistantMessage(
                        content: [
                            .thinking("hmm", signature: "sig"), .text("Hello"),
                            .toolCall(ToolCall(id: "c1", name: "weather", arguments: ["city": "Paris"])),
                        ], stopReason: .toolUse, usage: Usage(input: 3, output: 4), model: "anthropic/claude")),
                .toolResult(ToolResultMessage(toolCallId: "c1", toolName: "weather", content: "Sunny", isError: false)),
            ], metadata: ["owner": "me"], createdAt: Date(timeIntervalSince1970: 1_764_000_000.5))
        let json = try JSONValue(encoding: snapshot)
        #expect(try json.decode(SessionSnapshot.self) == snapshot)
    }
}
