import FlueEngine
import FluePersistence
import FluePostgres
import FlueRuntime
import FlueServer
import FlueTestSupport
import Foundation
import TestDatabase
import Testing

/// Two servers sharing one Postgres database, as two replicas behind a load balancer: control
/// requests reach work that the other replica owns (issue 13).
@Suite(
    .serialized,
    .enabled(
        if: ProcessInfo.processInfo.environment["TEST_DATABASE_URL"] != nil || ProcessInfo.processInfo.environment["CI"] != nil,
        "set TEST_DATABASE_URL to run against Postgres"))
struct ReplicaControlTests {
    /// Runs `body` with two replicas on a fresh database and one fake model server.
    static func withReplicas(
        access: AccessPolicy? = nil, _ body: (ServerFixture, ServerFixture) async throws -> Void
    ) async throws {
        let url = try await TestDatabase.fresh()
        let first = try PostgresPersistence(url: url)
        try await first.migrate()
        let second = try PostgresPersistence(url: url)
        let model = try await FakeModelServer.start()
        let a = try await ServerFixture.start(stores: try await first.connect(), model: model, access: access)
        let b = try await ServerFixture.start(stores: try await second.connect(), model: model, access: access)
        try await withTeardown {
            try await body(a, b)
        } teardown: {
            await a.stop(keepModel: true)
            await b.stop()
            try? await first.close()
            try? await second.close()
        }
    }

    /// Ownership holds across replicas: what one principal started on replica A is hidden from
    /// another on replica B, and visible to its owner there (issue 19).
    @Test func ownershipIsTheSameOnEveryReplica() async throws {
        try await Self.withReplicas(access: subjectScopedAccess()) { a, b in
            await a.model.enqueue(.text("hello alice"))
            let run = try await a.post("/workflows/logs", #"{"count":1}"#, headers: alice)
            let runId = try #require(run.json?["runId"]?.stringValue)
            let prompt = try await a.post("/agents/assistant/alice?wait=result", #"{"message":"hi"}"#, headers: alice)
            #expect(prompt.status == 200, "\(prompt.text)")
            let meta = try await b.get("/runs/\(runId)?meta", headers: alice)
            #expect(meta.status == 200 && meta.json?["startedBy"] == "alice", "\(meta.text)")
            #expect(try await b.get("/agents/assistant/alice?offset=-1", headers: alice).status == 200)
            #expect(try await b.get("/runs/\(runId)?meta", headers: bob).errorType == "run_not_found")
            #expect(try await b.post("/runs/\(runId)/cancel", nil, headers: bob).errorType == "run_not_found")
            #expect(try await b.get("/agents/assistant/alice?offset=-1", headers: bob).errorType == "stream_not_found")
            #expect(try await b.get("/agents/assistant/alice/submissions", headers: bob).errorType == "stream_not_found")
        }
    }

    /// The replica that runs `submissionId` and the other one.
    static func owner(of submissionId: String, _ a: ServerFixture, _ b: ServerFixture) async throws
        -> (owner: ServerFixture, other: ServerFixture)
    {
        let record = try #require(try await a.engine.stores.submissions.submission(submissionId))
        return record.owner == a.engine.ownerId ? (a, b) : (b, a)
    }

    @Test func aCancelOnOneReplicaStopsWorkTheOtherOwns() async throws {
        try await Self.withReplicas { a, b in
            var latencies: [Duration] = []
            for round in 0..<20 {
                let instance = "r\(round)"
                await a.model.enqueue(slowReply)
                let id = try await a.promptId(instance, "go")
                try await a.waitUntilStreaming(instance, id)
                let (owner, other) = try await Self.owner(of: id, a, b)
                #expect(try await owner.engine.stores.submissions.submission(id)?.owner == owner.engine.ownerId)
                let path = "agents/assistant/\(instance)"
                let started = ContinuousClock.now
                let cancellation = try await other.engine.cancel(submission: id, agent: "assistant", id: instance)
                guard case .stopping? = cancellation else {
                    Issue.record("a running submission is stopping, got \(String(describing: cancellation))")
                    continue
                }
                // The owner's stream shows the settlement.
                var settled: JSONValue?
                while settled == nil, ContinuousClock.now - started < .seconds(20) {
                    let events = try await owner.engine.stores.streams.read(path, after: .start, limit: 10_000).events
                    settled = events.lazy.compactMap { try? JSONValue(parsing: $0.data) }
                        .first { $0["type"] == "submission_settled" && $0["submissionId"]?.stringValue == id }
                    if settled == nil { try await Task.sleep(for: .milliseconds(5)) }
                }
                latencies.append(ContinuousClock.now - started)
                #expect(settled?["outcome"] == "aborted", "round \(round): \(String(describing: settled))")
                let record = try await owner.engine.stores.submissions.submission(id)
                #expect(record?.status == .aborted)
            }
            let sorted = latencies.sorted()
            let milliseconds = sorted.map { Double($0.components.attoseconds) / 1e15 + Double($0.components.seconds) * 1000 }
            print(
                "cancel on replica B → settlement on owner A's stream (Postgres, 20 rounds): median "
                    + String(format: "%.1f ms, min %.1f ms, max %.1f ms", milliseconds[10], milliseconds[0], milliseconds[19]))
            #expect(sorted.count == 20)

            // A run on A cancelled through B's HTTP routes.
            let waiting = Task { try await a.post("/workflows/sleeps?wait=result", #"{"ms":60000}"#) }
            var runId: String?
            try await a.waitUntil("the run is listed") {
                runId = try await a.engine.stores.runs.listRuns(status: .active, workflowName: "sleeps", limit: 5, cursor: nil)
                    .runs.first?.runId
                return runId != nil
            }
            let cancel = try await b.post("/runs/\(try #require(runId))/cancel", nil)
            #expect(cancel.status == 200, "\(cancel.text)")
            #expect(cancel.json?["error"]?["type"] == "aborted")
            #expect(try await waiting.value.errorType == "aborted")

            // A queued submission behind A's running one, cancelled on B; the running one goes on.
            await a.model.enqueue(ScriptedReply(text: "slow but fine", chunkDelayMs: 300))
            let running = try await a.promptId("q1", "first")
            let queued = try await a.promptId("q1", "second")
            try await a.waitUntilStreaming("q1", running)
            let cancelQueued = try await b.post("/agents/assistant/q1/submissions/\(queued)/cancel", nil)
            #expect(cancelQueued.status == 200)
            #expect(cancelQueued.json?["status"] == "aborted")
            let first = try await b.get("/agents/assistant/q1/submissions/\(running)?wait=result")
            #expect(first.json?["status"] == "completed", "\(first.text)")
            #expect(first.json?["result"]?["text"] == "slow but fine")

            // A call waiting for approval on A's work, approved on B: it runs once, somewhere.
            await a.model.enqueue(.toolCall("guarded_work", ["label": "cross"]), .text("approved across replicas"))
            let gated = try await a.promptId("ap", "go")
            let callId = try #require(try await b.pendingApprovals("ap").first?["callId"]?.stringValue)
            let approve = try await b.post("/agents/assistant/ap/approvals/\(callId)", #"{"decision":"approve"}"#)
            #expect(approve.status == 200, "\(approve.text)")
            let answer = try await a.get("/agents/assistant/ap/submissions/\(gated)?wait=result")
            #expect(answer.json?["result"]?["text"] == "approved across replicas", "\(answer.text)")
            #expect((a.ledger.calls + b.ledger.calls).filter { $0 == "cross" }.count == 1)
        }
    }
}
