import AsyncHTTPClient
import FlueClient
import FlueRuntime
import FlueTestSupport
import Foundation
import Synchronization
import Testing

/// The example server as a child process, for client and CLI tests.
struct ExampleServer {
    let child: ChildProcess
    let base: String

    static func start(_ model: FakeModelServer, _ extra: [String: String] = [:]) async throws -> ExampleServer {
        let child = try ChildProcess(arguments: ["serve"], environment: ExampleProcessTests.environment(model, extra))
        let port = try #require(await child.listeningPort(), "no listening line in: \(child.stderr)")
        return ExampleServer(child: child, base: "http://127.0.0.1:\(port)")
    }

    func stop() async {
        child.signal(SIGTERM)
        _ = await child.waitForExit()
    }
}

struct TranslateInput: Codable, Sendable {
    var text: String
    var language: String
}

struct Translation: Codable, Sendable, Equatable {
    var translation: String
    var confidence: String
}

/// A slow translation: many text deltas, then the structured result.
let slowTranslation = ScriptedReply(
    text: (1...40).map { "word\($0) " }.joined(),
    toolCalls: [ScriptedToolCall(name: "finish", arguments: ["translation": "Bonjour", "confidence": "high"])],
    chunkDelayMs: 60)

/// `FlueClient` against the real example server (issue 14).
@Suite(.serialized) struct ClientProcessTests {
    @Test(arguments: [FlueClient.LiveMode.sse, .longPoll])
    func aFollowedRunSurvivesCutConnectionsWithNoGapAndNoDuplicate(live: FlueClient.LiveMode) async throws {
        let model = try await FakeModelServer.start()
        try await model.scoped {
            let server = try await ExampleServer.start(model)
            let cutter = try await TCPCutter.start(forwardingTo: Int(server.base.split(separator: ":").last!)!)
            try await withTeardown {
                await model.enqueue(slowTranslation)
                let client = FlueClient(baseURL: "http://127.0.0.1:\(cutter.port)")
                let receipt = try await client.workflows.start("translate", payload: TranslateInput(text: "Hello", language: "French"))
                var indices: [Int] = []
                var types: [String] = []
                var batches: [(offset: String, last: Int)] = []
                // Cut the connections at moments the reader does not choose, while the model streams
                // (40 chunks, 60 ms apart): mid-response, between frames, during a poll. Each cut waits
                // for the reader's new connection first, so every cut hits a live read.
                let cutting = Task {
                    var seen = 0  // the read may reuse the start request's pooled connection
                    for _ in 0..<3 {
                        while cutter.accepted == seen && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(10)) }
                        seen = cutter.accepted
                        try? await Task.sleep(for: .milliseconds(150))
                        cutter.cutAll()
                    }
                }
                for try await event in client.events(of: .run(receipt.runId), live: live) {
                    indices.append(try #require(event.eventIndex))
                    if batches.last?.offset == event.batchOffset {
                        batches[batches.count - 1].last = indices.last!
                    } else {
                        batches.append((event.batchOffset, indices.last!))
                    }
                    types.append(event.type)
                    #expect(event.event != nil, "a known event type decodes: \(event.json)")
                }
                cutting.cancel()
                await cutting.value
                #expect(indices == Array(0..<indices.count), "no gap, no duplicate: \(indices)")
                #expect(types.last == "run_end", "the sequence ends at run_end: \(types.suffix(3))")
                #expect(types.filter { $0 == "text_delta" }.count >= 20)
                #expect(cutter.accepted >= 3, "the cuts forced reconnects: \(cutter.accepted) connections")
                // Resuming from an offset the stream handed out reads on from there, exactly.
                #expect(batches.count >= 3, "live reads came in several batches: \(batches.count)")
                let saved = batches[batches.count / 2]
                let rest = try await client.events(of: .run(receipt.runId), from: saved.offset, live: .catchUp).collect()
                #expect(rest.map(\.eventIndex) == Array((saved.last + 1)..<indices.count).map { Optional($0) })
            } teardown: {
                await cutter.stop()
                await server.stop()
            }
        }
    }

    @Test func routesTypedResultsAndTypedErrors() async throws {
        let model = try await FakeModelServer.start()
        try await model.scoped {
            let server = try await ExampleServer.start(model)
            try await withTeardown {
                let client = FlueClient(baseURL: server.base)
                await model.enqueue(.finish(["translation": "Hallo", "confidence": "high"]))
                let translation = try await client.workflows.run(
                    "translate", payload: TranslateInput(text: "Hello", language: "German"), as: Translation.self)
                #expect(translation == Translation(translation: "Hallo", confidence: "high"))

                let receipt = try await client.workflows.start(
                    "translate", payload: TranslateInput(text: "Hi", language: "Dutch"), idempotencyKey: "k-1")
                let again = try await client.workflows.start(
                    "translate", payload: TranslateInput(text: "Hi", language: "Dutch"), idempotencyKey: "k-1")
                #expect(again.runId == receipt.runId)
                _ = try await client.events(of: .run(receipt.runId)).collect()
                let record = try await client.runs.record(receipt.runId)
                #expect(record.status == "completed" && record.workflowName == "translate" && record.endedAt != nil)

                try await expectAPIError(.notFound, "run_not_found") { _ = try await client.runs.record("run_nope") }
                try await expectAPIError(.notFound, "workflow_not_found") {
                    _ = try await client.workflows.start("nope", payload: ["x": 1])
                }
                try await expectAPIError(.invalidRequest, "invalid_request") {
                    _ = try await client.workflows.start("translate", payload: ["text": 1])
                }
                try await expectAPIError(.conflict, "conflict") {
                    _ = try await client.workflows.start(
                        "translate", payload: TranslateInput(text: "Other", language: "Dutch"), idempotencyKey: "k-1")
                }
                try await expectAPIError(.conflict, "already_settled") { _ = try await client.runs.cancel(receipt.runId) }
                try await expectAPIError(.notFound, "stream_not_found") {
                    _ = try await client.events(of: .agent("assistant", "nobody-yet"), live: .catchUp).collect()
                }

                // Cancelling an active run, aborting an instance's running prompt.
                await model.enqueue(ScriptedReply(text: String(repeating: "slow ", count: 200), chunkDelayMs: 50))
                let slow = try await client.workflows.start("translate", payload: TranslateInput(text: "Long", language: "French"))
                try await Task.sleep(for: .milliseconds(300))
                let cancelled = try await client.runs.cancel(slow.runId)
                #expect(cancelled.status == "errored" && cancelled.error?["type"] == "aborted", "\(cancelled)")
                await model.enqueue(ScriptedReply(text: String(repeating: "slow ", count: 200), chunkDelayMs: 50))
                let running = try await client.agents.send("assistant", "cleo", message: "Talk for a while")
                try await Task.sleep(for: .milliseconds(300))
                let aborted = try await client.agents.abort("assistant", "cleo")
                #expect(aborted.map(\.submissionId) == [running.submissionId] && aborted.first?.status == "aborted", "\(aborted)")

                // Agents, submissions and approvals.
                let answer = try await client.agents.prompt("assistant", "ada", message: "Hi, I am Ada")
                #expect(answer.text == "Echo: Hi, I am Ada")
                let sent = try await client.agents.send("assistant", "ada", message: "Again")
                let settled = try await client.submissions.get(agent: "assistant", id: "ada", submissionId: sent.submissionId, waitForResult: true)
                #expect(settled.status == "completed" && settled.isSettled)
                let page = try await client.submissions.list(agent: "assistant", id: "ada", limit: 1)
                #expect(page.submissions.map(\.submissionId) == [sent.submissionId] && page.nextCursor != nil)
                try await expectAPIError(.conflict, "already_settled") {
                    _ = try await client.submissions.cancel(agent: "assistant", id: "ada", submissionId: sent.submissionId)
                }
                let gated = try await client.agents.send("assistant", "bea", message: "Please `send_email` to bob")
                var pending: [FlueClient.PendingApproval] = []
                for _ in 0..<200 where pending.isEmpty {
                    pending = try await client.approvals.list(agent: "assistant", id: "bea")
                    if pending.isEmpty { try await Task.sleep(for: .milliseconds(25)) }
                }
                let call = try #require(pending.first)
                #expect(call.tool == "send_email" && call.submissionId == gated.submissionId)
                try await client.approvals.decide(agent: "assistant", id: "bea", callId: call.callId, .approve)
                try await expectAPIError(.conflict, "already_decided") {
                    try await client.approvals.decide(agent: "assistant", id: "bea", callId: call.callId, .deny)
                }
                let done = try await client.submissions.get(agent: "assistant", id: "bea", submissionId: gated.submissionId, waitForResult: true)
                #expect(done.status == "completed")
                // The instance stream, typed: the approval and the settlement are there.
                var seen: [String] = []
                for try await event in client.events(of: .agent("assistant", "bea"), live: .catchUp) { seen.append(event.type) }
                #expect(seen.contains("approval_requested") && seen.contains("approval_decided") && seen.contains("submission_settled"), "\(seen)")
            } teardown: {
                await server.stop()
            }
        }
    }

    @Test func credentialsGoWithEveryRequestAndAStoppedServerIsATransportError() async throws {
        let model = try await FakeModelServer.start()
        try await model.scoped {
            let token = "client-test-token-0123456789abcdef"
            let server = try await ExampleServer.start(model, ["API_TOKENS": token])
            let port = Int(server.base.split(separator: ":").last!)!
            do {
                try await expectAPIError(.unauthorized, "unauthorized") {
                    _ = try await FlueClient(baseURL: server.base).runs.record("run_x")
                }
                let calls = Counter()
                let client = FlueClient(
                    baseURL: server.base, dynamicHeaders: {
                        calls.increment()
                        return ["authorization": "Bearer \(token)"]
                    })
                try await expectAPIError(.notFound, "run_not_found") { _ = try await client.runs.record("run_x") }
                #expect(calls.value == 1, "the header provider runs for each request")
                await server.stop()
            }
            do {
                _ = try await FlueClient(baseURL: "http://127.0.0.1:\(port)", timeout: .seconds(2)).runs.record("run_x")
                Issue.record("a stopped server answered")
            } catch FlueClientError.transport {
            }
        }
    }
}

final class Counter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}

/// Expects `body` to throw `.api` of `kind` with `type`.
func expectAPIError(
    _ kind: FlueAPIError.Kind, _ type: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async throws {
    do {
        try await body()
        Issue.record("expected \(type), got no error", sourceLocation: sourceLocation)
    } catch let error as FlueClientError {
        let api = error.apiError
        #expect(api?.kind == kind && api?.type == type, "expected \(kind) \(type), got \(error)", sourceLocation: sourceLocation)
    }
}

extension AsyncSequence {
    /// Every element, in order.
    func collect() async throws -> [Element] {
        var all: [Element] = []
        for try await element in self { all.append(element) }
        return all
    }
}
