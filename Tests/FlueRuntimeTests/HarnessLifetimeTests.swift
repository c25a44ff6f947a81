import FlueRuntime
import FlueTestSupport
import Testing

/// A harness and its sessions are freed once nobody holds them: one is made per workflow run
/// and per submission attempt, so a reference cycle between them grew a long-running server by
/// kilobytes per run (issue 15, measured in bench/memory.sh).
@Suite struct HarnessLifetimeTests {
    @Test func aHarnessAndItsSessionAreFreedAfterAPrompt() async throws {
        weak var harnessLeft: Harness?
        weak var sessionLeft: Session?
        do {
            let model = ScriptedModel([.text("Hello.")])
            let harness = Harness(agent: try Agent(name: "greeter", instructions: "Greet."), instanceId: "i1", models: model)
            let session = try await harness.session()
            #expect(try await harness.session() === session, "the open session while someone holds it")
            _ = try await session.prompt("Hi")
            harnessLeft = harness
            sessionLeft = session
        }
        #expect(harnessLeft == nil, "the harness is freed")
        #expect(sessionLeft == nil, "the session is freed")
    }

    @Test func aSessionReopenedAfterItWasFreedHasItsStoredHistory() async throws {
        let model = ScriptedModel([.text("First."), .text("Second.")])
        let store = InMemorySessionStore()
        let harness = Harness(agent: try Agent(name: "greeter", instructions: "Greet."), instanceId: "i2", models: model, store: store)
        _ = try await harness.session().prompt("One")
        let reopened = try await harness.session()
        #expect(await reopened.currentSnapshot.messages.count == 2, "the history came back from the store")
        _ = try await reopened.prompt("Two")
        #expect(await reopened.currentSnapshot.messages.count == 4)
    }
}
