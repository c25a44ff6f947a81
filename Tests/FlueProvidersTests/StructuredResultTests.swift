import FlueProviders
import FlueRuntime
import FlueTestSupport
import Testing

private struct Translation: Codable, Sendable, Equatable {
    enum Confidence: String, Codable, CaseIterable, Sendable { case low, medium, high }
    var translation: String
    var confidence: Confidence
}

@Suite struct StructuredResultTests {
    @Test(arguments: WireAPI.allCases)
    func decodesTheFinishArgumentsIntoTheResultType(api: WireAPI) async throws {
        let f = try await Fixture.start()
        await f.enqueue(.finish(["translation": "Bonjour", "confidence": "high"]))
        let session = try await f.session(try Agent(name: "t", model: api.model))

        let result = try await session.prompt("Translate hello to French", result: Translation.self)

        #expect(result == Translation(translation: "Bonjour", confidence: .high))
        let request = try #require(await f.requests().first)
        let schema = try #require(request.toolSchema("finish"))
        #expect(schema["properties"]?["confidence"] == ["type": "string", "enum": ["low", "medium", "high"]])
        #expect(schema["required"]?.arrayValue?.count == 2)
        #expect(request.toolNames.contains("give_up"))
        #expect(request.userTexts.first?.contains("finish") == true)
        if case .operation(let end) = f.log.all.last(where: { $0.type == "operation" })?.body {
            #expect(end.result == ["translation": "Bonjour", "confidence": "high"])
        }
    }

    @Test(arguments: WireAPI.allCases)
    func aMalformedResultIsSentBackAndTheCorrectedOneAccepted(api: WireAPI) async throws {
        let f = try await Fixture.start()
        await f.enqueue(
            .finish(["translation": "Bonjour", "confidence": "certain"]),
            .finish(["translation": "Bonjour", "confidence": "medium"]))
        let session = try await f.session(try Agent(name: "t", model: api.model))

        let result = try await session.prompt("Translate hello", result: Translation.self)

        #expect(result.confidence == .medium)
        let requests = await f.requests()
        #expect(requests.count == 2)
        let feedback = try #require(requests[1].toolResults.first)
        #expect(feedback.content.hasPrefix("Invalid result"))
        #expect(feedback.content.contains("confidence"))
    }

    @Test(arguments: WireAPI.allCases)
    func aModelThatStopsWithoutFinishIsRemindedThenSucceeds(api: WireAPI) async throws {
        let f = try await Fixture.start()
        await f.enqueue(.text("Bonjour!"), .finish(["translation": "Bonjour", "confidence": "low"]))
        let session = try await f.session(try Agent(name: "t", model: api.model))

        let response = try await session.promptForResult("Translate hello", result: Translation.self)

        #expect(response.data.translation == "Bonjour")
        #expect(response.usage.output > 0)
        let requests = await f.requests()
        #expect(requests.count == 2)
        #expect(requests[1].userTexts.last?.contains("You have not delivered the result") == true)
    }

    @Test(arguments: WireAPI.allCases)
    func retriesAreBoundedThenResultUnavailable(api: WireAPI) async throws {
        let f = try await Fixture.start()
        for _ in 0..<3 { await f.enqueue(.finish(["translation": 42])) }
        let session = try await f.session(try Agent(name: "t", model: api.model))

        let error = try await #require(throws: FlueError.self) {
            try await session.prompt("Translate", result: Translation.self, options: PromptOptions(resultRetries: 2))
        }

        #expect(error.type == "result_unavailable")
        #expect(await f.requests().count == 3)  // the first try plus two retries
    }

    @Test(arguments: WireAPI.allCases)
    func giveUpFailsWithTheModelsReason(api: WireAPI) async throws {
        let f = try await Fixture.start()
        await f.enqueue(.toolCall("give_up", ["reason": "no source text"]))
        let session = try await f.session(try Agent(name: "t", model: api.model))

        let error = try await #require(throws: FlueError.self) {
            try await session.prompt("Translate", result: Translation.self)
        }

        #expect(error.type == "result_unavailable")
        #expect(error.details["reason"] == "no source text")
    }

    @Test func nonObjectResultsAreWrapped() async throws {
        let f = try await Fixture.start()
        await f.enqueue(.finish(["result": ["a", "b"]]))
        let session = try await f.session(try Agent(name: "t", model: WireAPI.openai.model))

        let list = try await session.prompt("List two letters", result: [String].self)

        #expect(list == ["a", "b"])
        #expect(try #require(await f.requests().first).toolSchema("finish")?["required"] == ["result"])
    }

    @Test func theFakeServerAnswersFinishAutomaticallyFromTheSchema() async throws {
        let f = try await Fixture.start()
        let session = try await f.session(try Agent(name: "t", model: WireAPI.anthropic.model))
        let result = try await session.prompt("Translate", result: Translation.self)
        #expect(result.confidence == .low)
        #expect(!result.translation.isEmpty)
    }
}
