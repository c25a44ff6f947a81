import AsyncHTTPClient
import FlueEngine
import FluePersistence
import FlueRuntime
import FlueTestSupport
import Foundation
import Testing

extension ServerFixture {
    /// Waits until `condition` holds, checking every 20 ms; fails the test after `timeout`.
    func waitUntil(
        _ what: String, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("timed out waiting until \(what)")
        throw TestFailure()
    }

    /// Waits until the submission's model turn is streaming (a `text_delta` of it is stored).
    func waitUntilStreaming(_ instance: String, _ submissionId: String) async throws {
        try await waitUntil("\(submissionId) streams") {
            try await agentEvents("assistant", instance).contains {
                $0["type"] == "text_delta" && $0["submissionId"]?.stringValue == submissionId
            }
        }
    }

    /// The `submission_settled` events of one submission on the instance stream.
    func settledEvents(_ instance: String, _ submissionId: String) async throws -> [JSONValue] {
        try await agentEvents("assistant", instance).filter {
            $0["type"] == "submission_settled" && $0["submissionId"]?.stringValue == submissionId
        }
    }
}

/// A model turn that streams one word every 100 ms for a minute: a cancel lands mid-stream.
let slowReply = ScriptedReply(text: String(repeating: "word ", count: 600), chunkDelayMs: 100)

/// Cancel, abort, read by id, idempotent retries and budgets over HTTP, on every store (issue 13).
/// Serialized: each case holds a server, a fake model and (for Postgres) a connection pool, and
/// the other suites run beside it on this 2-core machine.
@Suite(.serialized) struct ControlTests {
    @Test(arguments: ReadAdapter.allCases)
    func cancellingMidStreamAndQueuedSettlesEachOnceAndTheQueueGoesOn(adapter: ReadAdapter) async throws {
        guard let (stores, close) = try await adapter.open() else { return }
        let f = try await ServerFixture.start(stores: stores)
        try await f.scoped {
            await f.model.enqueue(slowReply, .text("three done"))
            let first = try await f.promptId("c1", "one")
            let second = try await f.promptId("c1", "two")
            let third = try await f.promptId("c1", "three")
            try await f.waitUntilStreaming("c1", first)

            let queued = try await f.post("/agents/assistant/c1/submissions/\(second)/cancel", nil)
            #expect(queued.status == 200, "\(queued.text)")
            #expect(queued.json?["status"] == "aborted")
            #expect(queued.json?["error"]?["type"] == "aborted")
            #expect(queued.json?["settledAt"]?.stringValue != nil)

            let started = ContinuousClock.now
            let running = try await f.post("/agents/assistant/c1/submissions/\(first)/cancel", nil)
            #expect(running.status == 200, "\(running.text)")
            #expect(running.json?["status"] == "aborted", "\(running.text)")
            #expect(running.json?["error"]?["type"] == "aborted")
            #expect(running.json?["cancelRequestedAt"]?.stringValue != nil)
            #expect(ContinuousClock.now - started < .seconds(10), "the stream was cut at once, not after the minute it takes")

            // The rest of the queue runs, in order.
            let answer = try await f.get("/agents/assistant/c1/submissions/\(third)?wait=result")
            #expect(answer.status == 200, "\(answer.text)")
            #expect(answer.json?["status"] == "completed")
            #expect(answer.json?["result"]?["text"] == "three done")
            #expect(answer.json?["attempts"] == 1)

            for id in [first, second] {
                let settled = try await f.settledEvents("c1", id)
                #expect(settled.count == 1, "\(id) settles exactly once: \(settled)")
                #expect(settled.first?["outcome"] == "aborted")
                #expect(settled.first?["error"]?["type"] == "aborted")
            }
            let events = try await f.agentEvents("assistant", "c1")
            let thirdStart = events.firstIndex { $0["submissionId"]?.stringValue == third }
            let firstEnd = events.lastIndex { $0["submissionId"]?.stringValue == first }
            #expect(thirdStart != nil && firstEnd != nil && thirdStart! > firstEnd!, "the third ran after the first ended")
            let model = await f.model.requests()
            #expect(model.count == 2, "the cancelled ones are never asked again: \(model.count) requests")
            #expect(model.last?.body.jsonString.contains("two") == false, "the cancelled queued input never reached the model")

            // Idempotent: settled work answers 409 with its outcome; unknown ids 404.
            let again = try await f.post("/agents/assistant/c1/submissions/\(first)/cancel", nil)
            #expect(again.status == 409)
            #expect(again.errorType == "already_settled")
            #expect(again.json?["error"]?["meta"]?["status"] == "aborted")
            let done = try await f.post("/agents/assistant/c1/submissions/\(third)/cancel", nil)
            #expect(done.status == 409)
            #expect(done.json?["error"]?["meta"]?["status"] == "completed")
            let unknown = try await f.post("/agents/assistant/c1/submissions/sub_nope/cancel", nil)
            #expect(unknown.status == 404)
            #expect(unknown.errorType == "submission_not_found")
            // Another instance's submission is unknown here.
            let elsewhere = try await f.post("/agents/assistant/c2/submissions/\(third)/cancel", nil)
            #expect(elsewhere.status == 404)
            #expect(try await f.get("/agents/assistant/c2/submissions/\(third)").status == 404)

            // Read by id and listed, newest first, with a cursor.
            let read = try await f.get("/agents/assistant/c1/submissions/\(first)")
            #expect(read.status == 200)
            #expect(read.json?["submissionId"]?.stringValue == first)
            #expect(read.json?["kind"] == "direct")
            #expect(read.json?["offset"] == "0000000000000000_0000000000000000")
            let page = try await f.get("/agents/assistant/c1/submissions?limit=2")
            #expect(page.status == 200, "\(page.text)")
            #expect(page.json?["submissions"]?.arrayValue?.compactMap { $0["submissionId"]?.stringValue } == [third, second])
            #expect(page.json?["submissions"]?.arrayValue?.compactMap { $0["status"]?.stringValue } == ["completed", "aborted"])
            let cursor = try #require(page.json?["nextCursor"]?.stringValue)
            let rest = try await f.get("/agents/assistant/c1/submissions?limit=2&cursor=\(cursor)")
            #expect(rest.json?["submissions"]?.arrayValue?.compactMap { $0["submissionId"]?.stringValue } == [first])
            #expect(rest.json?["nextCursor"] == nil)
            #expect(try await f.get("/agents/assistant/c1/submissions?cursor=zzz").status == 400)
            #expect(try await f.get("/agents/assistant/c1/submissions?limit=0").status == 400)
            #expect(try await f.get("/agents/assistant/c1/submissions?lmit=2").status == 400)
            #expect(try await f.get("/agents/assistant/fresh/submissions").json?["submissions"] == [])
        }
        await close()
    }

    @Test(arguments: ReadAdapter.allCases)
    func cancellingMidToolReportsTheCallInterruptedAndNeverRunsItAgain(adapter: ReadAdapter) async throws {
        guard let (stores, close) = try await adapter.open() else { return }
        let f = try await ServerFixture.start(stores: stores)
        try await f.scoped {
            await f.model.enqueue(.toolCall("work", ["label": "long", "sleepMs": 60_000]), .text("after the cancel"))
            let id = try await f.promptId("t1", "go")
            try await f.waitUntil("the tool runs") { f.ledger.calls == ["long"] }
            let cancel = try await f.post("/agents/assistant/t1/submissions/\(id)/cancel", nil)
            #expect(cancel.status == 200, "\(cancel.text)")
            #expect(cancel.json?["status"] == "aborted")

            let next = try await f.post("/agents/assistant/t1?wait=result", #"{"message":"and now?"}"#)
            #expect(next.status == 200, "\(next.text)")
            #expect(next.json?["result"]?["text"] == "after the cancel")
            #expect(f.ledger.calls == ["long"], "the interrupted tool never runs again")
            // The model saw a result for the interrupted call: an error saying it was cancelled.
            let request = try #require(await f.model.requests().last)
            let results = (request.body["messages"]?.arrayValue ?? []).flatMap { $0["content"]?.arrayValue ?? [] }
                .filter { $0["type"] == "tool_result" }
            #expect(results.count == 1, "\(request.body.jsonString)")
            #expect(results.first?["is_error"] == true)
            #expect(results.first?.jsonString.contains("cancelled") == true, "\(results)")
            let settled = try await f.settledEvents("t1", id)
            #expect(settled.count == 1 && settled.first?["outcome"] == "aborted")
        }
        await close()
    }

    @Test(arguments: ReadAdapter.allCases)
    func abortStopsTheRunningSubmissionAndEveryQueuedOne(adapter: ReadAdapter) async throws {
        guard let (stores, close) = try await adapter.open() else { return }
        let f = try await ServerFixture.start(stores: stores)
        try await f.scoped {
            await f.model.enqueue(slowReply)
            let ids = [try await f.promptId("a1", "one"), try await f.promptId("a1", "two"), try await f.promptId("a1", "three")]
            try await f.waitUntilStreaming("a1", ids[0])
            let abort = try await f.post("/agents/assistant/a1/abort", nil)
            #expect(abort.status == 200, "\(abort.text)")
            let listed = abort.json?["submissions"]?.arrayValue ?? []
            #expect(listed.compactMap { $0["submissionId"]?.stringValue } == ids, "oldest first")
            #expect(listed.allSatisfy { $0["status"] == "aborted" }, "\(abort.text)")
            for id in ids { #expect(try await f.settledEvents("a1", id).count == 1) }
            // Nothing left: aborting again stops nothing.
            let again = try await f.post("/agents/assistant/a1/abort", nil)
            #expect(again.status == 200)
            #expect(again.json?["submissions"] == [])
            // The instance takes new work.
            await f.model.enqueue(.text("fresh start"))
            let next = try await f.post("/agents/assistant/a1?wait=result", #"{"message":"hello again"}"#)
            #expect(next.json?["result"]?["text"] == "fresh start", "\(next.text)")
            #expect(await f.model.requests().count == 2)
            // Guards apply: the guarded agent's control routes answer as its guard says.
            #expect(try await f.post("/agents/guarded-agent/x/abort", nil).status == 401)
            #expect(try await f.get("/agents/guarded-agent/x/submissions").status == 401)
            #expect(try await f.post("/agents/guarded-agent/x/submissions/s/cancel", nil).status == 401)
            #expect(try await f.get("/agents/guarded-agent/admin/submissions", headers: [("x-token", "secret")]).status == 403)
            #expect(try await f.get("/agents/guarded-agent/x/submissions", headers: [("x-token", "secret")]).status == 200)
            #expect(try await f.post("/agents/hidden/x/abort", nil).status == 404)
        }
        await close()
    }

    @Test(arguments: ReadAdapter.allCases)
    func cancellingARunEndsItAbortedOnceAndItsWaiterHearsSo(adapter: ReadAdapter) async throws {
        guard let (stores, close) = try await adapter.open() else { return }
        let f = try await ServerFixture.start(stores: stores)
        try await f.scoped {
            let waiting = Task { try await f.post("/workflows/sleeps?wait=result", #"{"ms":60000}"#) }
            var runId: String?
            try await f.waitUntil("the run is listed") {
                runId = try await f.engine.stores.runs.listRuns(status: .active, workflowName: "sleeps", limit: 5, cursor: nil)
                    .runs.first?.runId
                return runId != nil
            }
            let id = try #require(runId)
            let cancel = try await f.post("/runs/\(id)/cancel", nil)
            #expect(cancel.status == 200, "\(cancel.text)")
            #expect(cancel.json?["status"] == "errored")
            #expect(cancel.json?["error"]?["type"] == "aborted")
            let waited = try await waiting.value
            #expect(waited.status == 409, "\(waited.text)")
            #expect(waited.errorType == "aborted")
            let events = try await f.readToEnd(id)
            let ends = events.filter { $0["type"] == "run_end" }
            #expect(ends.count == 1)
            #expect(ends.first?["isError"] == true)
            #expect(ends.first?["error"]?["type"] == "aborted")
            let again = try await f.post("/runs/\(id)/cancel", nil)
            #expect(again.status == 409)
            #expect(again.errorType == "already_settled")
            #expect(again.json?["error"]?["meta"]?["status"] == "errored")
            #expect(try await f.post("/runs/run_unknown/cancel", nil).status == 404)
            #expect(try await f.get("/runs/\(id)/cancel").status == 405)
            // A guarded workflow's runs are hidden by its guard here too.
            let guarded = try await f.startRun("guarded", headers: [("x-token", "secret")])
            #expect(try await f.post("/runs/\(guarded)/cancel", nil).status == 404)
        }
        await close()
    }

    @Test(arguments: ReadAdapter.allCases)
    func idempotencyKeysReplayTheReceiptAndRefuseADifferentBody(adapter: ReadAdapter) async throws {
        guard let (stores, close) = try await adapter.open() else { return }
        let f = try await ServerFixture.start(stores: stores)
        try await f.scoped {
            await f.model.enqueue(.text("once"))
            let key = ("Idempotency-Key", "order-42")
            let first = try await f.post("/agents/assistant/k1", #"{"message":"charge it"}"#, headers: [key])
            #expect(first.status == 202, "\(first.text)")
            let retry = try await f.post("/agents/assistant/k1?wait=result", #"{"message":"charge it"}"#, headers: [key])
            #expect(retry.status == 200, "\(retry.text)")
            #expect(retry.json?["submissionId"] == first.json?["submissionId"])
            #expect(retry.json?["result"]?["text"] == "once")
            let replay = try await f.post("/agents/assistant/k1", #"{"message":"charge it"}"#, headers: [key])
            #expect(replay.json?["submissionId"] == first.json?["submissionId"])
            #expect(replay.json?["offset"] == first.json?["offset"], "the original receipt, offset included")
            #expect(await f.model.requests().count == 1, "the retries ran nothing")
            let conflict = try await f.post("/agents/assistant/k1", #"{"message":"charge it twice"}"#, headers: [key])
            #expect(conflict.status == 409)
            #expect(conflict.errorType == "conflict", "\(conflict.text)")
            // Scoped per instance: the same key elsewhere is another submission.
            await f.model.enqueue(.text("other"))
            let other = try await f.post("/agents/assistant/k2", #"{"message":"charge it"}"#, headers: [key])
            #expect(other.status == 202)
            #expect(other.json?["submissionId"] != first.json?["submissionId"])
            for bad in ["", "has space", String(repeating: "k", count: 256), "tab\there"] {
                let reply = try await f.post("/agents/assistant/k3", #"{"message":"x"}"#, headers: [("Idempotency-Key", bad)])
                #expect(reply.status == 400, "key \(bad.debugDescription): \(reply.status)")
            }

            let run = try await f.post("/workflows/logs?wait=result", #"{"count":2}"#, headers: [("Idempotency-Key", "nightly-1")])
            #expect(run.status == 200, "\(run.text)")
            #expect(run.json?["result"] == 2)
            let runRetry = try await f.post("/workflows/logs", #"{"count":2}"#, headers: [("Idempotency-Key", "nightly-1")])
            #expect(runRetry.status == 202)
            #expect(runRetry.json?["runId"] == run.json?["runId"])
            let runWait = try await f.post("/workflows/logs?wait=result", #"{"count":2}"#, headers: [("Idempotency-Key", "nightly-1")])
            #expect(runWait.status == 200)
            #expect(runWait.json?["result"] == 2)
            let runConflict = try await f.post("/workflows/logs", #"{"count":3}"#, headers: [("Idempotency-Key", "nightly-1")])
            #expect(runConflict.status == 409)
            #expect(runConflict.errorType == "conflict")
            let runs = try await f.engine.stores.runs.listRuns(status: nil, workflowName: "logs", limit: 10, cursor: nil)
            #expect(runs.runs.count == 1, "one run for the key")
            let otherWorkflow = try await f.post("/workflows/sleeps", #"{"ms":1}"#, headers: [("Idempotency-Key", "nightly-1")])
            #expect(otherWorkflow.status == 202, "keys are scoped per workflow")
        }
        await close()
    }

    @Test(arguments: ReadAdapter.allCases)
    func budgetsFailASubmissionAfterTheTurnThatReachedThem(adapter: ReadAdapter) async throws {
        guard let (stores, close) = try await adapter.open() else { return }
        let f = try await ServerFixture.start(stores: stores)
        try await f.scoped {
            await f.model.enqueue(.toolCall("work", ["label": "a"]), .toolCall("work", ["label": "b"]))
            let turns = try await f.post(
                "/agents/assistant/b1?wait=result", #"{"message":"go","budget":{"maxTurns":2}}"#)
            #expect(turns.status == 500, "\(turns.text)")
            #expect(turns.errorType == "budget_exceeded")
            #expect(turns.json?["error"]?["meta"]?["limit"] == "maxTurns")
            #expect(turns.json?["error"]?["meta"]?["used"] == 2)
            #expect(f.ledger.calls == ["a", "b"], "the tools of the turn that reached the budget ran and were recorded")
            let listed = try await f.get("/agents/assistant/b1/submissions?limit=1").json?["submissions"]?.arrayValue
            let id = try #require(listed?.first?["submissionId"]?.stringValue)
            #expect(listed?.first?["status"] == "failed")
            let settled = try await f.settledEvents("b1", id)
            #expect(settled.first?["outcome"] == "failed")
            #expect(settled.first?["error"]?["type"] == "budget_exceeded")

            // Tokens: the first turn already reports more than 1 token.
            await f.model.enqueue(.toolCall("work", ["label": "c"]))
            let tokens = try await f.post("/agents/assistant/b2?wait=result", #"{"message":"go","budget":{"maxTokens":1}}"#)
            #expect(tokens.errorType == "budget_exceeded", "\(tokens.text)")
            #expect(tokens.json?["error"]?["meta"]?["limit"] == "maxTokens")

            // A final answer completes even past the budget: its tokens are spent already.
            await f.model.enqueue(.text("short answer"))
            let final = try await f.post("/agents/assistant/b3?wait=result", #"{"message":"go","budget":{"maxTokens":1,"maxTurns":1}}"#)
            #expect(final.status == 200, "\(final.text)")

            for bad in [#"{"message":"x","budget":{"maxTurns":0}}"#, #"{"message":"x","budget":{"maxTokens":"9"}}"#,
                        #"{"message":"x","budget":{"turns":3}}"#, #"{"message":"x","budget":[]}"#] {
                let reply = try await f.post("/agents/assistant/b4", bad)
                #expect(reply.status == 400, "\(bad): \(reply.text)")
            }
        }
        await close()
    }
}

extension ServerFixture {
    /// Admits a prompt with a budget; returns its submission id.
    func promptId(_ instance: String, _ message: String, budget: JSONValue) async throws -> String {
        let reply = try await post(
            "/agents/assistant/\(instance)", JSONValue.object(["message": .string(message), "budget": budget]).jsonString)
        #expect(reply.status == 202, "\(reply.text)")
        return try #require(reply.json?["submissionId"]?.stringValue)
    }

    /// Waits until the instance has `count` calls waiting for approval and returns them.
    func pendingApprovals(_ instance: String, count: Int = 1) async throws -> [JSONValue] {
        var pending: [JSONValue] = []
        try await waitUntil("\(count) approvals wait on \(instance)") {
            pending = try await get("/agents/assistant/\(instance)/approvals").json?["approvals"]?.arrayValue ?? []
            return pending.count == count
        }
        return pending
    }
}

/// Durable human approval of tool calls, on every store (issue 13, item 4).
@Suite(.serialized) struct ApprovalTests {
    @Test(arguments: ReadAdapter.allCases)
    func anApprovedCallRunsOnceAndADeniedOneNever(adapter: ReadAdapter) async throws {
        guard let (stores, close) = try await adapter.open() else { return }
        let f = try await ServerFixture.start(stores: stores)
        try await f.scoped {
            await f.model.enqueue(.toolCall("guarded_work", ["label": "pay"]), .text("paid"))
            let id = try await f.promptId("ap1", "pay the invoice")
            let pending = try await f.pendingApprovals("ap1")
            let callId = try #require(pending.first?["callId"]?.stringValue)
            #expect(pending.first?["tool"] == "guarded_work")
            #expect(pending.first?["arguments"]?["label"] == "pay")
            #expect(pending.first?["submissionId"]?.stringValue == id)
            let waiting = try await f.get("/agents/assistant/ap1/submissions/\(id)")
            #expect(waiting.json?["status"] == "awaiting_approval")
            #expect(f.ledger.calls.isEmpty, "nothing runs before the decision")
            let requested = try await f.agentEvents("assistant", "ap1").filter { $0["type"] == "approval_requested" }
            #expect(requested.count == 1)
            #expect(requested.first?["callId"]?.stringValue == callId)
            #expect(requested.first?["expiresAt"]?.stringValue != nil)

            let approve = try await f.post("/agents/assistant/ap1/approvals/\(callId)", #"{"decision":"approve"}"#)
            #expect(approve.status == 200, "\(approve.text)")
            #expect(approve.json?["decision"] == "approve")
            let done = try await f.get("/agents/assistant/ap1/submissions/\(id)?wait=result")
            #expect(done.json?["status"] == "completed", "\(done.text)")
            #expect(done.json?["result"]?["text"] == "paid")
            #expect(f.ledger.calls == ["pay"], "the approved call ran exactly once")
            let again = try await f.post("/agents/assistant/ap1/approvals/\(callId)", #"{"decision":"deny"}"#)
            #expect(again.status == 409)
            #expect(again.errorType == "already_decided")
            #expect(again.json?["error"]?["meta"]?["decision"] == "approve")
            #expect(try await f.post("/agents/assistant/ap1/approvals/call_nope", #"{"decision":"approve"}"#).status == 404)
            #expect(try await f.post("/agents/assistant/ap1/approvals/\(callId)", #"{"decision":"maybe"}"#).status == 400)
            #expect(try await f.get("/agents/assistant/ap1/approvals").json?["approvals"] == [])
            let events = try await f.agentEvents("assistant", "ap1")
            #expect(events.filter { $0["type"] == "approval_decided" }.count == 1)
            #expect(events.map { $0["eventIndex"]?.intValue } == Array(0..<events.count).map(Optional.some), "indices are positions")

            // Denied: the model reads the reason, the tool never runs.
            await f.model.enqueue(.toolCall("guarded_work", ["label": "nope"]), .text("understood, not done"))
            let denied = try await f.promptId("ap2", "do the risky thing")
            let call = try #require(try await f.pendingApprovals("ap2").first?["callId"]?.stringValue)
            let deny = try await f.post(
                "/agents/assistant/ap2/approvals/\(call)", #"{"decision":"deny","reason":"too expensive"}"#)
            #expect(deny.status == 200)
            let answer = try await f.get("/agents/assistant/ap2/submissions/\(denied)?wait=result")
            #expect(answer.json?["result"]?["text"] == "understood, not done", "\(answer.text)")
            #expect(!f.ledger.calls.contains("nope"))
            let request = try #require(await f.model.requests().last).body.jsonString
            #expect(request.contains("denied") && request.contains("too expensive"), "\(request)")

            // Calls the closure exempts run at once.
            await f.model.enqueue(.toolCall("guarded_work", ["label": "free"]), .text("free work done"))
            let free = try await f.post("/agents/assistant/ap3?wait=result", #"{"message":"free work"}"#)
            #expect(free.json?["result"]?["text"] == "free work done")
            #expect(f.ledger.calls.contains("free"))
        }
        await close()
    }

    /// A budget spans the whole submission: the resumed attempt after an approval counts the
    /// turn before the wait.
    @Test func aBudgetCountsTheTurnsBeforeAnApprovalWait() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            await f.model.enqueue(.toolCall("guarded_work", ["label": "first"]), .toolCall("work", ["label": "second"]))
            let id = try await f.promptId("bw", "go", budget: ["maxTurns": 2])
            let callId = try #require(try await f.pendingApprovals("bw").first?["callId"]?.stringValue)
            #expect(try await f.post("/agents/assistant/bw/approvals/\(callId)", #"{"decision":"approve"}"#).status == 200)
            let settled = try await f.get("/agents/assistant/bw/submissions/\(id)?wait=result")
            #expect(settled.json?["status"] == "failed", "\(settled.text)")
            #expect(settled.json?["error"]?["type"] == "budget_exceeded")
            #expect(settled.json?["error"]?["details"]?["used"] == 2, "\(settled.text)")
            #expect(f.ledger.calls == ["first", "second"])
        }
    }

    @Test(arguments: ReadAdapter.allCases)
    func anUndecidedCallExpiresAsDeniedAndACancelWhileWaitingLeavesAValidHistory(adapter: ReadAdapter) async throws {
        guard let (stores, close) = try await adapter.open() else { return }
        let f = try await ServerFixture.start(stores: stores) {
            $0.engine.approvalTimeout = .seconds(1)
            $0.engine.recoveryScanInterval = .milliseconds(200)
        }
        try await f.scoped {
            await f.model.enqueue(.toolCall("guarded_work", ["label": "late"]), .text("nobody answered, moving on"))
            let id = try await f.promptId("ex1", "go")
            let answer = try await f.get("/agents/assistant/ex1/submissions/\(id)?wait=result")
            #expect(answer.json?["result"]?["text"] == "nobody answered, moving on", "\(answer.text)")
            #expect(!f.ledger.calls.contains("late"))
            let decided = try await f.agentEvents("assistant", "ex1").filter { $0["type"] == "approval_decided" }
            #expect(decided.first?["decision"] == "deny")
            #expect(decided.first?["reason"] == "expired")

            // Cancelled while waiting: it settles aborted; the next prompt finds a valid history.
            await f.model.enqueue(.toolCall("guarded_work", ["label": "never"]), .text("fresh start"))
            let waiting = try await f.promptId("ex2", "go")
            let callId = try #require(try await f.pendingApprovals("ex2").first?["callId"]?.stringValue)
            let cancel = try await f.post("/agents/assistant/ex2/submissions/\(waiting)/cancel", nil)
            #expect(cancel.status == 200, "\(cancel.text)")
            #expect(cancel.json?["status"] == "aborted")
            #expect(try await f.post("/agents/assistant/ex2/approvals/\(callId)", #"{"decision":"approve"}"#).status == 409)
            let next = try await f.post("/agents/assistant/ex2?wait=result", #"{"message":"hello"}"#)
            #expect(next.json?["result"]?["text"] == "fresh start", "\(next.text)")
            #expect(!f.ledger.calls.contains("never"))
            let request = try #require(await f.model.requests().last).body.jsonString
            #expect(request.contains("never ran"), "the dangling call is answered: \(request)")
        }
        await close()
    }
}
