import FlueProviders
import FlueRuntime
import FlueTestSupport
import Testing

@Suite struct ProviderFailureTests {
    @Test(arguments: WireAPI.allCases)
    func rateLimitThenSuccessIsRetried(api: WireAPI) async throws {
        let f = try await Fixture.start()
        await f.enqueue(.httpError(429, message: "slow down", retryAfter: 0), .httpError(503), .text("finally"))
        let session = try await f.session(try Agent(name: "a", model: api.model))

        let response = try await session.prompt("hi")

        #expect(response.text == "finally")
        #expect(await f.requests().count == 3)
        #expect(f.log.types.filter { $0 == "turn" }.count == 1)
    }

    @Test(arguments: WireAPI.allCases)
    func retriesStopAtTheLimit(api: WireAPI) async throws {
        let f = try await Fixture.start()
        for _ in 0..<3 { await f.enqueue(.httpError(500, message: "boom")) }
        let session = try await f.session(try Agent(name: "a", model: api.model))

        let error = try await #require(throws: FlueError.self) { try await session.prompt("hi") }

        #expect(error.type == "operation_failed")
        #expect(error.details["reason"]?["type"] == "model_request_failed")
        #expect(error.message.contains("boom"))
        #expect(await f.requests().count == 3)  // maxRetries 2
        if case .turn(let turn) = f.log.all.first(where: { $0.type == "turn" })?.body {
            #expect(turn.isError)
        } else {
            Issue.record("no turn event")
        }
    }

    @Test(arguments: WireAPI.allCases)
    func clientErrorsAreNotRetried(api: WireAPI) async throws {
        let f = try await Fixture.start()
        await f.enqueue(.httpError(400, message: "bad schema"))
        let session = try await f.session(try Agent(name: "a", model: api.model))

        let error = try await #require(throws: FlueError.self) { try await session.prompt("hi") }

        #expect(error.type == "operation_failed")
        #expect(error.details["status"] == 400)
        #expect(await f.requests().count == 1)
    }

    @Test(arguments: WireAPI.allCases)
    func aDisconnectBeforeOutputIsRetried(api: WireAPI) async throws {
        let f = try await Fixture.start()
        await f.enqueue(ScriptedReply(text: "lost", disconnect: .beforeOutput), .text("recovered"))
        let session = try await f.session(try Agent(name: "a", model: api.model))

        let response = try await session.prompt("hi")

        #expect(response.text == "recovered")
        #expect(await f.requests().count == 2)
        #expect(await f.server.state.droppedStreams == 1)
        let deltas = f.log.all.compactMap { if case .textDelta(let d) = $0.body { d.delta } else { nil } }
        #expect(deltas == ["recovered"])
    }

    @Test(arguments: WireAPI.allCases)
    func aDisconnectAfterOutputStartedIsNeverRetried(api: WireAPI) async throws {
        let f = try await Fixture.start()
        await f.enqueue(ScriptedReply(text: "partial answer", disconnect: .afterOutput), .text("must not be used"))
        let session = try await f.session(try Agent(name: "a", model: api.model))

        let error = try await #require(throws: FlueError.self) { try await session.prompt("hi") }

        #expect(error.type == "operation_failed")
        #expect(error.details["reason"]?["type"] == "model_stream_interrupted")
        #expect(await f.requests().count == 1)
        #expect(await f.server.state.pendingReplies == 1)
        #expect(f.log.types.contains("text_delta"))
    }

    @Test(arguments: WireAPI.allCases)
    func cancellationClosesTheModelRequest(api: WireAPI) async throws {
        let f = try await Fixture.start()
        await f.enqueue(
            ScriptedReply(text: (1...40).map { "word\($0)" }.joined(separator: " "), chunkDelayMs: 50))
        let session = try await f.session(try Agent(name: "a", model: api.model))
        let log = f.log

        let task = Task { try await session.prompt("long answer please") }
        try await eventually { log.types.contains("text_delta") }
        task.cancel()

        await #expect(throws: CancellationError.self) { try await task.value }
        try await eventually { await f.server.state.abandonedStreams == 1 }
        #expect(await f.server.state.completedStreams == 0)
        if case .operation(let end) = f.log.all.last(where: { $0.type == "operation" })?.body {
            #expect(end.error?["type"] == "aborted")
        } else {
            Issue.record("no operation event after cancellation")
        }
    }

    @Test func configurationErrorsNameWhatIsMissing() async throws {
        let f = try await Fixture.start()
        let bare = try ProviderRegistry(environment: [:])
        let missingKey = try #require(throws: FlueError.self) { try bare.client(for: "anthropic/claude-sonnet-4-6") }
        #expect(missingKey.type == "missing_api_key")
        #expect(missingKey.message.contains("ANTHROPIC_API_KEY"))
        let openAIKey = try #require(throws: FlueError.self) { try bare.client(for: "openai/gpt-4.1") }
        #expect(openAIKey.message.contains("OPENAI_API_KEY"))
        let unknown = try #require(throws: FlueError.self) { try bare.client(for: "mystery/model") }
        #expect(unknown.type == "provider_not_configured")
        #expect(throws: FlueError.self) { try ProviderRegistry(environment: ["MODEL_SPECIFIER": "no-slash"]) }

        // No model anywhere: the operation fails with model_not_configured before any request.
        let session = try await Harness(agent: try Agent(name: "a"), instanceId: "i", models: bare).session()
        let noModel = try await #require(throws: FlueError.self) { try await session.prompt("hi") }
        #expect(noModel.type == "model_not_configured")
        #expect(await f.requests().isEmpty)
    }

    @Test func modelSpecifierFromTheEnvironmentIsTheDefault() async throws {
        let f = try await Fixture.start(environment: ["MODEL_SPECIFIER": "openai/gpt-env"])
        #expect(f.registry.defaultModel == "openai/gpt-env")
        let session = try await f.session(try Agent(name: "a"))
        let response = try await session.prompt("hi")
        #expect(response.model == "openai/gpt-env")
        #expect(try #require(await f.requests().first).body["model"] == "gpt-env")
    }

    @Test func openAICompatibleProvidersAreRegisteredWithABaseURL() async throws {
        let f = try await Fixture.start()
        f.registry.register("local", .openAICompatible(baseURL: f.server.openAIBaseURL))
        await f.enqueue(.text("from the local model"))
        let session = try await f.session(try Agent(name: "a", model: "local/llama3.2"))

        let response = try await session.prompt("hi")

        #expect(response.text == "from the local model")
        let request = try #require(await f.requests().first)
        #expect(request.body["model"] == "llama3.2")
        #expect(request.headers["authorization"] == nil)
        #expect(request.body["max_tokens"] != nil)
    }
}
