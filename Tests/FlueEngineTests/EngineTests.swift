@testable import FlueEngine
import FluePersistence
import FlueRuntime
import FlueTestSupport
import Foundation
import ServiceLifecycle
import Testing

/// The engine driven from code, as `hello-agents run` and a webhook handler drive it: no HTTP
/// server, an in-process scripted model, in-memory stores.
@Suite struct EngineTests {
    /// An engine running as a service until `body` returns; its teardown is awaited.
    static func withEngine(
        model: ScriptedModel, agents: [AgentRegistration] = [], workflows: [WorkflowRegistration] = [],
        _ body: (Engine) async throws -> Void
    ) async throws {
        let engine = try Engine(
            workflows: workflows, agents: agents, models: model,
            configuration: EngineConfiguration(shutdownGracePeriod: .seconds(5), claimPollInterval: .milliseconds(50)))
        let group = ServiceGroup(services: [engine], logger: engine.logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                try await body(engine)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test func aSubmittedPromptIsAnsweredAndItsOffsetIsItsSettledEvent() async throws {
        let model = ScriptedModel([.text("Hello from the engine.")])
        let agent = try Agent(name: "assistant", model: model.defaultModel, instructions: "Be brief.")
        try await Self.withEngine(model: model, agents: [.internal(agent)]) { engine in
            let receipt = try await engine.submitPrompt(agent: "assistant", id: "code-1", message: "Hi")
            #expect(receipt.streamPath == "agents/assistant/code-1")
            #expect(receipt.offset == StreamOffset.start.description, "a new instance's stream starts empty")

            let (outcome, offset) = try await engine.settlement(of: receipt, abandon: nil)
            guard case .completed(let answer) = outcome else {
                Issue.record("expected a completed submission, got \(outcome)")
                return
            }
            #expect(answer["text"] == "Hello from the engine.")
            let events = try await engine.stores.streams.read(receipt.streamPath, after: .start).events
            let last = try JSONValue(parsing: try #require(events.last).data)
            #expect(last["type"] == "submission_settled")
            #expect(events.last?.offset == offset, "the offset is that of the submission's own settled event")
            #expect(try await engine.result(ofSubmission: receipt.submissionId, agent: "assistant", id: "code-1") == outcome)
        }
    }

    @Test func addressesAreCheckedOnceWithTheirOwnProblem() async throws {
        let model = ScriptedModel([])
        let hidden = try Agent(name: "hidden", model: model.defaultModel, instructions: "x")
        let open = try Agent(name: "open", model: model.defaultModel, instructions: "x")
        try await Self.withEngine(model: model, agents: [.internal(hidden), .http(open)]) { engine in
            #expect(throws: AgentAddressProblem.badAgentName) { try engine.instanceKey(agent: "9lives", id: "a", exposedOnly: false) }
            #expect(throws: AgentAddressProblem.badInstanceId) { try engine.instanceKey(agent: "open", id: "..", exposedOnly: false) }
            #expect(throws: AgentAddressProblem.badInstanceId) { try engine.instanceKey(agent: "open", id: "a/b", exposedOnly: true) }
            #expect(throws: AgentAddressProblem.unknownAgent) { try engine.instanceKey(agent: "nobody", id: "a", exposedOnly: false) }
            #expect(throws: AgentAddressProblem.unknownAgent) { try engine.instanceKey(agent: "hidden", id: "a", exposedOnly: true) }
            let key = try engine.instanceKey(agent: "hidden", id: "a", exposedOnly: false)
            #expect(key == SessionKey(agent: "hidden", instanceId: "a"))

            let badId = await #expect(throws: FlueError.self) {
                try await engine.dispatch(agent: "hidden", id: "a b", input: ["event": "x"])
            }
            #expect(badId?.kind == .invalidPayload)
            let unknown = await #expect(throws: FlueError.self) {
                try await engine.submitPrompt(agent: "nobody", id: "a", message: "hi")
            }
            #expect(unknown?.kind == .agentNotRegistered)
        }
    }

    @Test func afterShutdownBeganNewWorkIsRefusedWithAnEngineError() async throws {
        let model = ScriptedModel([])
        let agent = try Agent(name: "assistant", model: model.defaultModel, instructions: "x")
        let engine = try Engine(workflows: [], agents: [.internal(agent)], models: model)
        await engine.drain()
        #expect(engine.shutdown.isSet)
        await #expect(throws: EngineError.shuttingDown("The server is shutting down and accepts no new work.")) {
            try await engine.submitPrompt(agent: "assistant", id: "late", message: "hi")
        }
    }
}
