import Foundation
import Synchronization
import Testing

@testable import FlueRuntime

@Suite struct EventTests {
    @Test func encodesFlatJSONWithEnvelopeCorrelationAndPayload() throws {
        let event = FlueEvent(
            eventIndex: 7, timestamp: Date(timeIntervalSince1970: 1_764_000_000.25),
            correlation: EventCorrelation(runId: "run_1", session: "default", operationId: "op_1", turnId: "turn_1"),
            body: .tool(.init(toolName: "weather", toolCallId: "call_1", isError: false, result: "Sunny", durationMs: 12)))
        let json = try JSONValue(encoding: event)
        #expect(
            json == [
                "v": 1, "type": "tool", "eventIndex": 7, "timestamp": "2025-11-24T16:00:00.250Z",
                "runId": "run_1", "session": "default", "operationId": "op_1", "turnId": "turn_1",
                "toolName": "weather", "toolCallId": "call_1", "isError": false, "result": "Sunny", "durationMs": 12,
            ])
        #expect(try json.decode(FlueEvent.self) == event)
    }

    @Test(arguments: [
        FlueEvent.Body.runStart(.init(workflowName: "translate", payload: ["text": "hi"], startedAt: Date(timeIntervalSince1970: 5))),
        .runResume(.init(reason: "process restarted")),
        .runEnd(.init(result: ["ok": true], isError: false, error: nil, durationMs: 3)),
        .agentStart, .agentEnd, .idle,
        .operationStart(.init(operationKind: .prompt)),
        .operation(.init(operationKind: .prompt, durationMs: 1, isError: true, error: ["type": "x"], result: nil, usage: Usage(input: 1))),
        .taskStart(.init(prompt: "p", agent: "researcher")),
        .task(.init(result: "r", isError: false, error: nil, durationMs: 2)),
        .turnStart(.init(purpose: .agent, model: "anthropic/m")),
        .turn(.init(durationMs: 4, model: "anthropic/m", usage: Usage(output: 2), stopReason: .toolUse, isError: false, error: nil)),
        .textDelta(.init(delta: "Hel")), .thinkingStart, .thinkingDelta(.init(delta: "hmm")), .thinkingEnd,
        .toolStart(.init(toolName: "t", toolCallId: "c", args: ["a": 1])),
        .compactionStart(.init(reason: "threshold", estimatedTokens: 10)),
        .compaction(.init(messagesBefore: 10, messagesAfter: 3, usage: Usage())),
        .log(.init(level: .info, message: "hello", attributes: ["k": "v"])),
        .submissionSettled(.init(outcome: .failed, error: ["type": "interrupted"])),
    ])
    func roundTripsEveryEventType(body: FlueEvent.Body) throws {
        let event = FlueEvent(
            eventIndex: 0, timestamp: Date(timeIntervalSince1970: 1_764_000_000),
            correlation: EventCorrelation(instanceId: "i"), body: body)
        let json = try JSONValue(encoding: event)
        #expect(json["type"]?.stringValue == body.type)
        #expect(json["v"] == 1)
        #expect(try json.decode(FlueEvent.self) == event)
    }

    @Test func concurrentEmitsGetGapFreeIndicesInDeliveryOrder() async {
        let delivered = Mutex<[Int]>([])
        let emitter = EventEmitter(base: EventCorrelation(runId: "run_x")) { event in
            delivered.withLock { $0.append(event.eventIndex) }
        }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<250 { emitter.emit(.idle) }
                }
            }
        }
        #expect(delivered.withLock { $0 } == Array(0..<2000))
        #expect(emitter.nextIndex == 2000)
    }
}
