import FlueEngine
import FlueProviders
import FlueRuntime
import FlueServer
import FlueTestSupport
import Foundation
import Synchronization
import Testing

/// Cost per turn from the model catalog's prices, summed per operation and run (issue 15, item 3),
/// and the host's event subscription (item 4).
@Suite struct CostAndObserveTests {
    /// Anthropic's 5-minute-cache price shape, set for the fake model.
    static let price = ModelPrice(input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75)
    static let scripted = Usage(input: 1000, output: 200, cacheRead: 4000, cacheWrite: 500)
    /// 1000×3 + 200×15 + 4000×0.3 + 500×3.75 dollars per million tokens.
    static let expected = Cost(input: 0.003, output: 0.003, cacheRead: 0.0012, cacheWrite: 0.001875)

    static func close(_ a: JSONValue?, _ b: Double) -> Bool {
        guard let value = a?.doubleValue else { return false }
        return abs(value - b) < 1e-12
    }

    static func expectCost(_ cost: JSONValue?, times count: Double = 1, _ place: String) {
        #expect(close(cost?["input"], expected.input * count), "\(place): \(cost?.jsonString ?? "none")")
        #expect(close(cost?["output"], expected.output * count), "\(place)")
        #expect(close(cost?["cacheRead"], expected.cacheRead * count), "\(place)")
        #expect(close(cost?["cacheWrite"], expected.cacheWrite * count), "\(place)")
        #expect(close(cost?["total"], expected.total * count), "\(place)")
    }

    static func pricedFixture() async throws -> ServerFixture {
        let f = try await ServerFixture.start()
        let registry = try #require(f.engine.models as? ProviderRegistry)
        registry.setPrice(price, for: try ModelSpecifier(parsing: "anthropic/claude-fake"))
        return f
    }

    @Test func aTurnCostsItsTokensTimesThePriceOnTheTurnTheRunEndAndTheRunRecord() async throws {
        let f = try await Self.pricedFixture()
        try await f.scoped {
            await f.model.enqueue(
                ScriptedReply(
                    toolCalls: [ScriptedToolCall(name: "finish", arguments: ["translation": "salut", "confidence": "high"])],
                    usage: Self.scripted))
            let reply = try await f.post("/workflows/translate?wait=result", #"{"text":"hi","language":"fr"}"#)
            #expect(reply.status == 200, "\(reply.text)")
            let runId = try #require(reply.json?["runId"]?.stringValue)
            let events = try await f.readToEnd(runId)
            let turn = try #require(events.first { $0["type"] == "turn" })
            #expect(turn["usage"]?["input"] == 1000 && turn["usage"]?["cacheRead"] == 4000)
            Self.expectCost(turn["usage"]?["cost"], "turn event")
            Self.expectCost(events.first { $0["type"] == "operation" }?["usage"]?["cost"], "operation event")
            Self.expectCost(events.last?["usage"]?["cost"], "run_end")
            let meta = try await f.get("/runs/\(runId)?meta")
            Self.expectCost(meta.json?["usage"]?["cost"], "run record")
            #expect(meta.json?["usage"]?["output"] == 200)
        }
    }

    @Test func aSubmissionSumsTheCostOfItsTurnsAndACostBudgetStopsIt() async throws {
        let f = try await Self.pricedFixture()
        try await f.scoped {
            await f.model.enqueue(
                ScriptedReply(toolCalls: [ScriptedToolCall(name: "work", arguments: ["label": "a"])], usage: Self.scripted),
                ScriptedReply(text: "done", usage: Self.scripted))
            let answer = try await f.post("/agents/assistant/cost1?wait=result", #"{"message":"go"}"#)
            #expect(answer.status == 200, "\(answer.text)")
            Self.expectCost(answer.json?["result"]?["usage"]?["cost"], times: 2, "two turns in the prompt's result")

            // 0.009075 dollars per turn: a budget of 0.005 is reached after the first.
            await f.model.enqueue(
                ScriptedReply(toolCalls: [ScriptedToolCall(name: "work", arguments: ["label": "b"])], usage: Self.scripted))
            let stopped = try await f.post("/agents/assistant/cost2?wait=result", #"{"message":"go","budget":{"maxCost":0.005}}"#)
            #expect(stopped.errorType == "budget_exceeded", "\(stopped.text)")
            #expect(stopped.json?["error"]?["meta"]?["limit"] == "maxCost")
            #expect(Self.close(stopped.json?["error"]?["meta"]?["used"], Self.expected.total))
            for bad in [#"{"message":"x","budget":{"maxCost":0}}"#, #"{"message":"x","budget":{"maxCost":"1"}}"#,
                        #"{"message":"x","budget":{"maxCost":-2}}"#] {
                let reply = try await f.post("/agents/assistant/cost3", bad)
                #expect(reply.status == 400 && reply.errorType == "invalid_request", "\(bad): \(reply.text)")
            }
        }
    }

    @Test func observersSeeEveryEventOfRunsAndInstancesUntilCancelled() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            let seen = Mutex<[ObservedEvent]>([])
            let observation = f.engine.observe { event in seen.withLock { $0.append(event) } }
            let run = try await f.post("/workflows/logs?wait=result", #"{"count":2}"#)
            let runId = try #require(run.json?["runId"]?.stringValue)
            await f.model.enqueue(.text("hello"))
            _ = try await f.post("/agents/assistant/watched?wait=result", #"{"message":"hi"}"#)
            let stored = try await f.readToEnd(runId).map { $0["type"]?.stringValue ?? "" }
            let ofRun = seen.withLock { $0 }.filter { $0.source == .run(runId: runId, workflow: "logs") }
            #expect(ofRun.map(\.event.type) == stored, "every event of the run, in order")
            #expect(ofRun.allSatisfy { $0.streamPath == "runs/\(runId)" })
            let ofInstance = seen.withLock { $0 }.filter { $0.source == .instance(agent: "assistant", id: "watched") }
            #expect(ofInstance.contains { $0.event.type == "text_delta" } && ofInstance.last?.event.type == "submission_settled",
                "the instance's events: \(ofInstance.map(\.event.type))")

            observation.cancel()
            let before = seen.withLock { $0.count }
            _ = try await f.post("/workflows/logs?wait=result", #"{"count":1}"#)
            #expect(seen.withLock { $0.count } == before, "nothing after cancel")
        }
    }
}
