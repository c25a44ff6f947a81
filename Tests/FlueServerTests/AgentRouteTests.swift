import AsyncHTTPClient
import FluePersistence
import FlueRuntime
@testable import FlueEngine
@testable import FlueServer
import FlueSQLite
import FlueTestSupport
import Foundation
import Testing

extension ServerFixture {
    /// Every event of an agent instance stream so far.
    func agentEvents(_ name: String, _ id: String, after offset: String = "-1") async throws -> [JSONValue] {
        var events: [JSONValue] = []
        var offset = offset
        while true {
            let reply = try await get("/agents/\(name)/\(id)?offset=\(offset)")
            guard reply.status == 200 else { return events }
            events += reply.json?.arrayValue ?? []
            offset = reply.header("Stream-Next-Offset") ?? offset
            if reply.header("Stream-Up-To-Date") == "true" { return events }
        }
    }

    /// Waits until the submission is settled and returns its record.
    func settled(_ submissionId: String, timeout: Duration = .seconds(20)) async throws -> SubmissionRecord {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let record = try await engine.stores.submissions.submission(submissionId), record.status.isSettled {
                return record
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestFailure()
    }

    func promptId(_ id: String, _ message: String, agent: String = "assistant") async throws -> String {
        let reply = try await post("/agents/\(agent)/\(id)", JSONValue.object(["message": .string(message)]).jsonString)
        #expect(reply.status == 202, "\(reply.text)")
        return try #require(reply.json?["submissionId"]?.stringValue)
    }
}

@Suite struct AgentRouteTests {
    @Test func badRequestsGetTheEnvelopeBeforeAnythingIsAdmitted() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            let cases: [(String, String?, String?, Int, String)] = [
                ("/agents/assistant/%20", #"{"message":"hi"}"#, "application/json", 400, "invalid_request"),
                ("/agents/assistant/has%20space", #"{"message":"hi"}"#, "application/json", 400, "invalid_request"),
                ("/agents/assistant/" + String(repeating: "x", count: 257), #"{"message":"hi"}"#, "application/json", 400, "invalid_request"),
                ("/agents/9bad/x", #"{"message":"hi"}"#, "application/json", 400, "invalid_request"),
                ("/agents/nope/x", #"{"message":"hi"}"#, "application/json", 404, "agent_not_found"),
                ("/agents/hidden/x", #"{"message":"hi"}"#, "application/json", 404, "agent_not_found"),
                ("/agents/assistant/x?wait=soon", #"{"message":"hi"}"#, "application/json", 400, "invalid_request"),
                ("/agents/assistant/x", #"{"message":42}"#, "application/json", 400, "invalid_request"),
                ("/agents/assistant/x", #"["hi"]"#, "application/json", 400, "invalid_request"),
                ("/agents/assistant/x", #"{"message":"hi","images":[{"type":"image","data":"AAAA"}]}"#, "application/json", 400, "invalid_request"),
                ("/agents/assistant/x", #"{"message":"hi","images":{"type":"image"}}"#, "application/json", 400, "invalid_request"),
                // Not base64, empty, and not an image type both providers accept (found by a new-user trial: both were 200).
                ("/agents/assistant/x", #"{"message":"hi","images":[{"type":"image","data":"!!","mimeType":"image/png"}]}"#, "application/json", 400, "invalid_request"),
                ("/agents/assistant/x", #"{"message":"hi","images":[{"type":"image","data":"","mimeType":"image/png"}]}"#, "application/json", 400, "invalid_request"),
                ("/agents/assistant/x", #"{"message":"hi","images":[{"type":"image","data":"aGk=","mimeType":"text/plain"}]}"#, "application/json", 400, "invalid_request"),
                ("/agents/assistant/x", #"{"message":"hi""#, "application/json", 400, "invalid_json"),
                ("/agents/assistant/x", "message=hi", "text/plain", 415, "unsupported_media_type"),
                ("/agents/assistant/x", nil, nil, 400, "invalid_request"),
            ]
            for (path, body, type, status, errorType) in cases {
                let reply = try await f.request(.POST, path, body: body, contentType: type)
                #expect(reply.status == status, "\(path) \(body ?? "-"): \(reply.text)")
                #expect(reply.errorType == errorType, "\(path) \(body ?? "-"): \(reply.text)")
            }
            let put = try await f.request(.PUT, "/agents/assistant/x")
            #expect(put.status == 405 && put.header("Allow") == "GET, HEAD, POST")
            // Nothing above was admitted: the instance has no stream.
            let read = try await f.get("/agents/assistant/x")
            #expect(read.status == 404 && read.errorType == "stream_not_found")
            #expect(try await f.engine.stores.submissions.runnableHeads(agents: ["assistant"], limit: 100).isEmpty)
        }
    }

    @Test func anOversizedImageIsRefusedAndALargeValidOneIsAccepted() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            let tooBig = String(repeating: "A", count: AgentPromptBody.maxImageCharacters + 4)
            let reply = try await f.post(
                "/agents/assistant/img", #"{"message":"look","images":[{"type":"image","data":"\#(tooBig)","mimeType":"image/png"}]}"#)
            #expect(reply.status == 400)
            #expect(reply.json?["error"]?["details"]?.stringValue?.contains("14680064") == true)
            let fine = String(repeating: "A", count: 2_000_000)
            let accepted = try await f.post(
                "/agents/assistant/img?wait=result",
                #"{"message":"look","images":[{"type":"image","data":"\#(fine)","mimeType":"image/png"}],"extra":1}"#)
            #expect(accepted.status == 200, "\(accepted.text.prefix(300))")
            let sent = try #require(await f.model.requests().last)
            #expect(sent.body.jsonString.contains("image/png"))
        }
    }

    @Test func aPromptIsAdmittedReadableAtOnceAndAnsweredWithWaitResult() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            #expect(try await f.get("/agents/assistant/u1").status == 404)
            await f.model.enqueue(ScriptedReply(text: "Hello there friend", chunkDelayMs: 150))
            let first = try await f.post("/agents/assistant/u1", #"{"message":"Hi"}"#)
            #expect(first.status == 202)
            // A real offset even before the stream holds any event (Durable Streams: `-1` is never issued).
            #expect(first.json?["offset"] == "0000000000000000_0000000000000000")
            #expect(first.header("Stream-Next-Offset") == "0000000000000000_0000000000000000")
            #expect(first.header("Location") == "http://127.0.0.1:\(f.port)/agents/assistant/u1")
            #expect(first.json?["streamUrl"]?.stringValue == first.header("Location"))
            // The stream exists as soon as the prompt is admitted.
            let head = try await f.request(.HEAD, "/agents/assistant/u1")
            #expect(head.status == 200)
            let firstId = try #require(first.json?["submissionId"]?.stringValue)
            _ = try await f.settled(firstId)

            let second = try await f.post("/agents/assistant/u1?wait=result", #"{"message":"And again"}"#)
            #expect(second.status == 200, "\(second.text)")
            #expect(second.json?["result"]?["text"] == "Echo: And again")
            #expect(second.json?["result"]?["model"] == ["provider": "anthropic", "id": "claude-fake"])
            #expect(second.json?["result"]?["usage"]?["totalTokens"]?.intValue ?? 0 > 0)
            let secondId = try #require(second.json?["submissionId"]?.stringValue)
            // The second model call carried the first exchange.
            let messages = try #require(await f.model.requests().last?.body["messages"]?.arrayValue)
            #expect(messages.count == 3, "user, assistant, user: \(messages)")
            #expect(messages[1].jsonString.contains("Hello there friend"))

            // Reading from the offset returned before the second admission yields exactly its events.
            let all = try await f.agentEvents("assistant", "u1")
            let firstEvents = all.filter { $0["submissionId"]?.stringValue == firstId }
            let after = try await f.agentEvents("assistant", "u1", after: firstEvents.count > 0 ? String(format: "0000000000000000_%016d", firstEvents.count) : "-1")
            #expect(after.allSatisfy { $0["submissionId"]?.stringValue == secondId })
            #expect(after.first?["type"] == "operation_start")
            #expect(after.last?["type"] == "submission_settled")
            #expect(all.map { $0["eventIndex"]?.intValue } == Array(0..<all.count).map(Optional.some))
            #expect(all.allSatisfy { $0["instanceId"] == "u1" && $0["session"] == "default" })
            #expect(second.json?["offset"]?.stringValue == String(format: "0000000000000000_%016d", all.count))
        }
    }

    /// The `?wait=result` offset is that of the submission's own `submission_settled` event, on
    /// every store: it was once read from the tail after the settlement, before that event was
    /// appended, and came back one event short (seen with SQLite).
    @Test(arguments: ["memory", "sqlite"])
    func waitResultOffsetIsThatOfTheSubmissionsSettledEvent(store: String) async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("flue-offset-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let sqlite = SQLitePersistence(path: path)
        let stores: FlueStores
        if store == "sqlite" {
            try await sqlite.migrate()
            stores = try await sqlite.connect()
        } else {
            stores = .inMemory()
        }
        let f = try await ServerFixture.start(stores: stores)
        try await f.scoped {
            for index in 0..<5 {
                let reply = try await f.post("/agents/assistant/offsets?wait=result", #"{"message":"turn \#(index)"}"#)
                #expect(reply.status == 200, "\(reply.text)")
                let id = try #require(reply.json?["submissionId"]?.stringValue)
                let offset = try #require(reply.json?["offset"]?.stringValue.flatMap { StreamOffset(parsing: $0) })
                let events = try await f.agentEvents("assistant", "offsets")
                let count = Int(offset.eventCount)
                #expect(count >= 1 && count <= events.count)
                let last: JSONValue? = count >= 1 && count <= events.count ? events[count - 1] : nil
                #expect(last?["type"] == "submission_settled", "turn \(index): \(String(describing: last))")
                #expect(last?["submissionId"]?.stringValue == id)
            }
        }
        if store == "sqlite" { try await sqlite.close() }
    }

    @Test func aFailedSubmissionAnswersWaitWithItsOwnErrorType() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            await f.model.enqueue(.httpError(400, message: "bad request for this model"))
            let reply = try await f.post("/agents/assistant/oops?wait=result", #"{"message":"Hi"}"#)
            #expect(reply.status == 500)
            #expect(reply.errorType == "operation_failed", "\(reply.text)")
            let events = try await f.agentEvents("assistant", "oops")
            #expect(events.last?["type"] == "submission_settled")
            #expect(events.last?["outcome"] == "failed")
            // The instance keeps working after a failure.
            let next = try await f.post("/agents/assistant/oops?wait=result", #"{"message":"again"}"#)
            #expect(next.status == 200)
        }
    }

    @Test func promptsToOneInstanceRunInAdmissionOrderAndInstancesRunInParallel() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            // Each instance's first turn calls a tool that takes 2 s; two instances overlap (2 s, not
            // 400 ms: under a loaded CI run the second instance's first turn once started only after
            // the first instance's tool had finished).
            await f.model.enqueue(
                .toolCall("work", ["label": "a", "sleepMs": 2000]), .toolCall("work", ["label": "b", "sleepMs": 2000]))
            var ids: [String] = []
            for index in 0..<6 {
                ids.append(try await f.promptId(index % 2 == 0 ? "left" : "right", "msg \(index)"))
            }
            for id in ids { _ = try await f.settled(id) }
            #expect(f.ledger.maxRunning == 2, "two instances ran their tools at the same time")
            for instance in ["left", "right"] {
                let events = try await f.agentEvents("assistant", instance)
                var order: [String] = []
                for event in events where event["type"] == "operation_start" {
                    order.append(try #require(event["submissionId"]?.stringValue))
                }
                let expected = ids.enumerated().filter { ($0.offset % 2 == 0) == (instance == "left") }.map(\.element)
                #expect(order == expected)
                // Submissions never overlap within an instance: each settles before the next starts.
                var open: String?
                for event in events {
                    if event["type"] == "operation_start" {
                        #expect(open == nil)
                        open = event["submissionId"]?.stringValue
                    }
                    if event["type"] == "submission_settled" { open = nil }
                }
            }
        }
    }

    @Test func concurrencyIsBoundedGlobally() async throws {
        let f = try await ServerFixture.start { $0.engine.agentConcurrency = 1 }
        try await f.scoped {
            await f.model.enqueue(
                .toolCall("work", ["label": "a", "sleepMs": 200]), .toolCall("work", ["label": "b", "sleepMs": 200]))
            let a = try await f.promptId("one", "go")
            let b = try await f.promptId("two", "go")
            _ = try await f.settled(a)
            _ = try await f.settled(b)
            #expect(f.ledger.maxRunning == 1)
            #expect(f.ledger.calls.count == 2)
        }
    }

    @Test func guardsRunBeforeAdmissionAndBeforeReads() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            #expect(try await f.post("/agents/guarded-agent/g1", #"{"message":"hi"}"#).status == 401)
            #expect(try await f.get("/agents/guarded-agent/g1").status == 401)
            let ok = try await f.post("/agents/guarded-agent/g1?wait=result", #"{"message":"hi"}"#, headers: [("x-token", "secret")])
            #expect(ok.status == 200)
            #expect(try await f.get("/agents/guarded-agent/g1", headers: [("x-token", "secret")]).status == 200)
        }
    }

    @Test func dispatchIsIdempotentOnItsIdAndConflictsOnADifferentInput() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            let input: JSONValue = ["event": "issue_opened", "number": 42]
            let first = try await f.engine.dispatch(agent: "hidden", id: "repo-1", input: input, dispatchId: "delivery-1")
            let again = try await f.engine.dispatch(agent: "hidden", id: "repo-1", input: input, dispatchId: "delivery-1")
            #expect(first == again)
            let error = try await #require(throws: FlueError.self) {
                try await f.engine.dispatch(agent: "hidden", id: "repo-1", input: ["event": "other"], dispatchId: "delivery-1")
            }
            #expect(error.kind == .conflict)
            #expect(FlueHTTPError.from(error).status == .conflict)
            _ = try await f.settled("delivery-1")
            let request = try #require(await f.model.requests().last)
            let text = request.body["messages"]?.arrayValue?.first?.jsonString ?? ""
            #expect(text.contains("<dispatch type=\\\"dispatch_input\\\" agent=\\\"hidden\\\" id=\\\"repo-1\\\""))
            #expect(text.contains("issue_opened"))
            #expect(await f.model.requests().count == 1, "the repeated dispatch did not run twice")
            // Internal agents have no HTTP routes but their events are stored.
            #expect(try await f.get("/agents/hidden/repo-1").status == 404)
            let events = try await f.engine.stores.streams.read("agents/hidden/repo-1", after: .start)
            #expect(events.events.contains { String(decoding: $0.data, as: UTF8.self).contains("\"dispatchId\":\"delivery-1\"") })
        }
    }

    @Test func aSessionCannotBeDeletedWhileWorkIsQueuedAndIsEmptyAfterwards() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            await f.model.enqueue(.toolCall("work", ["label": "slow", "sleepMs": 300]))
            let id = try await f.promptId("del", "start")
            let busy = try await #require(throws: FlueError.self) { try await f.engine.deleteAgentSession(agent: "assistant", id: "del") }
            #expect(busy.kind == .sessionBusy)
            _ = try await f.settled(id)
            try await f.engine.deleteAgentSession(agent: "assistant", id: "del")
            #expect(try await f.engine.stores.sessions.loadSession(SessionKey(agent: "assistant", instanceId: "del")) == nil)
            let reply = try await f.post("/agents/assistant/del?wait=result", #"{"message":"fresh start"}"#)
            #expect(reply.status == 200)
            #expect(await f.model.requests().last?.body["messages"]?.arrayValue?.count == 1)
        }
    }

    @Test func aLeaseRenewedByALiveOwnerIsNeverTakenOver() async throws {
        let f = try await ServerFixture.start {
            $0.engine.submissionLease = .seconds(1)
            $0.engine.submissionLeaseRenewal = .milliseconds(250)
            $0.engine.recoveryScanInterval = .milliseconds(100)
        }
        try await f.scoped {
            await f.model.enqueue(.toolCall("work", ["label": "long", "sleepMs": 2500]))
            let id = try await f.promptId("long", "go")
            let record = try await f.settled(id)
            #expect(record.status == .completed)
            #expect(record.attemptCount == 1)
            #expect(f.ledger.calls == ["long"])
        }
    }

    @Test func aSubmissionPastItsTimeoutFailsBeforeTheNextTurn() async throws {
        // Margins for a loaded 2-core machine: the first turn must start within the timeout.
        let f = try await ServerFixture.start { $0.engine.submissionTimeout = .milliseconds(1500) }
        try await f.scoped {
            await f.model.enqueue(.toolCall("work", ["label": "slow", "sleepMs": 2500]))
            let reply = try await f.post("/agents/assistant/late?wait=result", #"{"message":"go"}"#)
            #expect(reply.status == 500)
            #expect(reply.errorType == "submission_timeout", "\(reply.text)")
            #expect(await f.model.requests().count == 1, "no model turn after the timeout")
        }
    }

    @Test func shutdownStopsAtTheTurnBoundaryAndTheNextStartResumes() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("flue-agents-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = try await FakeModelServer.start()
        try await model.scoped {
            let first = SQLitePersistence(path: path)
            try await first.migrate()
            let ledger = ToolLedger()
            let a = try await ServerFixture.start(stores: try await first.connect(), model: model, ledger: ledger)
            await model.enqueue(.toolCall("work", ["label": "during-shutdown", "sleepMs": 2000]))  // long enough for the stop to arrive on a loaded machine
            let id = try await a.promptId("resume", "do the work")
            while ledger.calls.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
            // SIGTERM while the tool runs: the tool finishes, its result is saved, no new model turn starts.
            await a.stop(keepModel: true)
            try await first.close()
            #expect(await model.requests().count == 1)
            let second = SQLitePersistence(path: path)
            try await second.migrate()
            let stores = try await second.connect()
            let stopped = try #require(try await stores.submissions.submission(id))
            #expect(stopped.status == .running, "left unsettled for the next start")
            #expect(stopped.journal?.phase == .toolResultsRecorded)

            let b = try await ServerFixture.start(stores: stores, model: model, ledger: ledger)
            let record = try await b.settled(id)
            #expect(record.status == .completed)
            #expect(record.attemptCount == 2)
            #expect(ledger.calls == ["during-shutdown"], "the tool ran once")
            let requests = await model.requests()
            #expect(requests.count == 2)
            #expect(requests.last?.body.jsonString.contains("worked: during-shutdown") == true)
            // The conversation continues months later from the same store.
            let later = try await b.post("/agents/assistant/resume?wait=result", #"{"message":"what did you do?"}"#)
            #expect(later.status == 200)
            #expect(await model.requests().last?.body["messages"]?.arrayValue?.count == 5)
            await b.stop(keepModel: true)
            try await second.close()
        }
    }
}
