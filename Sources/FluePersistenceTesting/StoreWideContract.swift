import FluePersistence
import FlueRuntime
import Foundation

extension PersistenceContract {
    /// Checks of what spans the whole store (``RetentionStore``, ``SubmissionStore/openCounts()``).
    /// Unlike ``checks`` they remove or count whatever else is in the store, so each needs an
    /// adapter (a database) that no other check uses at the same time.
    public static let storeWideChecks: [ContractCheck] = [
        ContractCheck(name: "submissions: open counts cover the whole store by status") { stores, _ in
            let store = stores.submissions
            try expect(try await store.openCounts().isEmpty, "an empty store has no open submissions")
            let running = freshKey()
            _ = try await store.admit(newSubmission(running))
            _ = try await store.admit(newSubmission(running))
            _ = try await store.admit(newSubmission(freshKey()))
            let claimed = try await claimHead(store, running)
            let counts = try await store.openCounts()
            try expect(counts == [.queued: 2, .running: 1], "two queued, one running: \(counts)")
            _ = try await store.settle(claimed.submissionId, attemptId: claimed.attemptId, .completed("ok"), at: Date())
            let after = try await store.openCounts()
            try expect(after == [.queued: 2], "a settled submission is not open: \(after)")
        },
        ContractCheck(name: "retention: removes exactly the old ended runs, settled submissions and idle agent streams") {
            stores, _ in
            let retention = try requireValue(stores.retention)
            let longAgo = Date(timeIntervalSince1970: 978_307_200)  // 2001-01-01
            let cutoff = longAgo.addingTimeInterval(86_400 * 30)

            // Runs: ended long ago, ended now, and active since long ago.
            let oldRun = try await makeRun(stores, started: longAgo, endedAt: longAgo.addingTimeInterval(60))
            let recentRun = try await makeRun(stores, started: longAgo, endedAt: Date())
            let activeRun = try await makeRun(stores, started: longAgo, endedAt: nil)
            // Submissions: settled long ago (with chunks and attempt markers), settled now, and queued.
            let oldKey = freshKey()
            let oldSubmission = try await makeSettledSubmission(stores.submissions, oldKey, at: longAgo.addingTimeInterval(60))
            let recentSubmission = try await makeSettledSubmission(stores.submissions, freshKey(), at: Date())
            let busyKey = freshKey()
            _ = try await stores.submissions.admit(newSubmission(busyKey))
            // An instance whose submission waits for a human decision is busy too.
            let waitingKey = freshKey()
            _ = try await stores.submissions.admit(newSubmission(waitingKey))
            let waiting = try await claimHead(stores.submissions, waitingKey)
            let pending = ToolApprovalRecord(
                callId: unique("call"), tool: "send", arguments: [:], requestedAt: Date(),
                expiresAt: Date().addingTimeInterval(86_400 * 365))
            try expect(
                try await stores.submissions.awaitApproval(waiting.submissionId, attemptId: try requireValue(waiting.attemptId), approvals: [pending]),
                "the submission waits for a decision")
            let idlePath = "agents/\(oldKey.agent)/\(oldKey.instanceId)"
            let busyPath = "agents/\(busyKey.agent)/\(busyKey.instanceId)"
            let waitingPath = "agents/\(waitingKey.agent)/\(waitingKey.instanceId)"
            for path in [idlePath, busyPath, waitingPath] {
                try await stores.streams.createStream(path)
                try await stores.streams.appendBatch(path, [Data(#"{"n":0}"#.utf8), Data(#"{"n":1}"#.utf8)])
            }

            let runSession = SessionKey(agent: "summarizer", instanceId: oldRun)
            let conversation = SessionKey(agent: oldKey.agent, instanceId: oldKey.instanceId)
            for key in [runSession, conversation] {
                try await stores.sessions.saveSession(key, SessionSnapshot(messages: [.user(text: "hi", images: [])]))
            }

            let first = try await retention.prune(RetentionRequest(olderThan: cutoff))
            try expect(first.runs >= 1 && first.submissions >= 1, "the old run and submission are removed: \(first)")
            try expect(try await stores.runs.getRun(oldRun) == nil, "an old ended run is gone")
            try expect(try await stores.streams.meta("runs/\(oldRun)") == nil, "with its stream")
            try expect(try await stores.sessions.loadSession(runSession) == nil, "and the sessions of its agents")
            let emptied = try await stores.streams.read("runs/\(oldRun)", after: .start, limit: 10)
            try expect(emptied.events.isEmpty, "and its events")
            try expect(try await stores.submissions.submission(oldSubmission) == nil, "an old settled submission is gone")
            try expect(
                try await stores.submissions.streamChunks(oldSubmission, streamKey: "k").isEmpty, "with its stream chunks")
            try expect(try await stores.submissions.attemptMarkers(oldSubmission).isEmpty, "and its attempt markers")
            try expect(try await stores.runs.getRun(recentRun) != nil, "a recently ended run stays")
            try expect(try await stores.streams.meta("runs/\(recentRun)") != nil, "with its stream")
            try expect(try await stores.runs.getRun(activeRun)?.status == .active, "an active run stays, however old")
            try expect(try await stores.submissions.submission(recentSubmission) != nil, "a recently settled submission stays")
            try expect(try await stores.streams.read(idlePath, after: .start).events.count == 2, "a recent agent stream stays")

            // Everything ended or appended before now is old now; unsettled and active work is not.
            try await Task.sleep(for: .milliseconds(20))
            _ = try await retention.prune(RetentionRequest(olderThan: Date().addingTimeInterval(1)))
            try expect(try await stores.runs.getRun(recentRun) == nil, "the run that ended before the new cut-off is gone")
            try expect(try await stores.runs.getRun(activeRun)?.status == .active, "the active run still stays")
            try expect(try await stores.streams.meta("runs/\(activeRun)") != nil, "with its stream")
            try expect(try await stores.submissions.submission(recentSubmission) == nil, "the settled submission is gone")
            let queued = try await stores.submissions.submissions(agent: busyKey.agent, instanceId: busyKey.instanceId, before: nil, limit: 10)
            try expect(queued.count == 1 && queued[0].status == .queued, "the queued submission stays: \(queued)")
            try expect(try await stores.streams.read(busyPath, after: .start).events.count == 2, "a busy instance keeps its events")
            try expect(
                try await stores.streams.read(waitingPath, after: .start).events.count == 2,
                "an instance awaiting approval keeps its events")
            try expect(
                try await stores.submissions.submission(waiting.submissionId)?.status == .awaitingApproval,
                "and its submission")
            try expect(
                try await stores.sessions.loadSession(conversation)?.messages.count == 1,
                "an idle instance keeps its conversation")
            let idle = try await stores.streams.read(idlePath, after: .start)
            try expect(idle.events.isEmpty && idle.upToDate, "an idle instance's events are removed: \(idle.events.count)")
            let tail = try await requireValue(stores.streams.meta(idlePath)).tail
            try expect(tail == StreamOffset(sequence: 1), "the idle stream keeps its tail: \(tail)")
            try expect(idle.nextOffset == tail, "a read of the emptied stream continues at the tail: \(idle.nextOffset)")
            let past = StreamOffset(sequence: 40)
            try expect(
                try await stores.streams.read(idlePath, after: past).nextOffset == past, "an offset past the tail is kept")
            let next = try await stores.streams.append(idlePath, Data(#"{"n":2}"#.utf8))
            try expect(next == StreamOffset(sequence: 2), "the next append continues the sequence: \(next)")
            let resumed = try await stores.streams.read(idlePath, after: StreamOffset(sequence: 1))
            try expect(resumed.events.map(\.offset) == [next], "a reader at the old tail gets the new event")
            try expect(
                try await stores.streams.read(idlePath, after: .start).events.map(\.offset) == [next],
                "a reader from the start gets the retained events only")
        },
        ContractCheck(name: "retention: keepAtMost removes the oldest beyond the bound; batchLimit bounds one pass") {
            stores, _ in
            let retention = try requireValue(stores.retention)
            let now = Date()
            var runs: [String] = []
            var submissions: [String] = []
            for age in [4.0, 3, 2, 1] {
                runs.append(try await makeRun(stores, started: now.addingTimeInterval(-10), endedAt: now.addingTimeInterval(-age)))
                submissions.append(try await makeSettledSubmission(stores.submissions, freshKey(), at: now.addingTimeInterval(-age)))
            }
            let active = try await makeRun(stores, started: now.addingTimeInterval(-100), endedAt: nil)
            let ancient = Date(timeIntervalSince1970: 978_307_200)
            let first = try await retention.prune(RetentionRequest(olderThan: ancient, keepAtMost: 1, batchLimit: 2))
            try expect(first.runs == 2 && first.submissions == 2, "one pass removes at most the batch limit: \(first)")
            try expect(first.reached(2), "and says that it reached it")
            let second = try await retention.prune(RetentionRequest(olderThan: ancient, keepAtMost: 1, batchLimit: 2))
            try expect(second.runs == 1 && second.submissions == 1, "the next pass removes the rest beyond the bound: \(second)")
            for (index, id) in runs.enumerated() {
                let kept = try await stores.runs.getRun(id) != nil
                try expect(kept == (index == 3), "only the newest ended run is kept (run \(index): \(kept))")
            }
            for (index, id) in submissions.enumerated() {
                let kept = try await stores.submissions.submission(id) != nil
                try expect(kept == (index == 3), "only the newest settled submission is kept (\(index): \(kept))")
            }
            try expect(try await stores.runs.getRun(active) != nil, "an active run does not count against the bound")
            let third = try await retention.prune(RetentionRequest(olderThan: ancient, keepAtMost: 1, batchLimit: 2))
            try expect(third == RetentionReport(), "nothing is left to remove: \(third)")

            // Ends and settlements at the same instant: the bound still keeps exactly one of each.
            let tie = Date().addingTimeInterval(-0.5)
            var tied: [String] = []
            var tiedSubmissions: [String] = []
            for _ in 0..<3 {
                tied.append(try await makeRun(stores, started: tie, endedAt: tie))
                tiedSubmissions.append(try await makeSettledSubmission(stores.submissions, freshKey(), at: tie))
            }
            let fourth = try await retention.prune(RetentionRequest(olderThan: ancient, keepAtMost: 1))
            try expect(fourth.runs == 3 && fourth.submissions == 3, "the older run and submission and two of each tie go: \(fourth)")
            var kept = 0
            for id in tied where try await stores.runs.getRun(id) != nil { kept += 1 }
            var keptSubmissions = 0
            for id in tiedSubmissions where try await stores.submissions.submission(id) != nil { keptSubmissions += 1 }
            try expect(kept == 1 && keptSubmissions == 1, "one of the tied runs and submissions is kept: \(kept), \(keptSubmissions)")
        },
    ]

    /// A run with a stream of two events; ended (and its stream closed) when `endedAt` is set.
    private static func makeRun(_ stores: FlueStores, started: Date, endedAt: Date?) async throws -> String {
        let id = unique("run")
        _ = try await stores.runs.createRun(
            RunRecord(runId: id, workflowName: "retention", startedAt: started, payload: nil, owner: "p1", heartbeatAt: Date()))
        try await stores.streams.createStream("runs/\(id)")
        try await stores.streams.appendBatch("runs/\(id)", [Data(#"{"type":"run_start"}"#.utf8), Data(#"{"type":"x"}"#.utf8)])
        if let endedAt {
            try await stores.runs.endRun(id, .completed("done"), endedAt: endedAt, durationMs: 1)
            try await stores.streams.closeStream("runs/\(id)")
        }
        return id
    }

    /// A submission claimed, given a stream chunk and an attempt marker, and settled at `at`.
    private static func makeSettledSubmission(_ store: any SubmissionStore, _ key: SessionKey, at: Date) async throws -> String {
        let new = newSubmission(key)
        _ = try await store.admit(new)
        let claimed = try await claimHead(store, key)
        _ = try await store.appendStreamChunk(new.submissionId, streamKey: "k", index: 0, text: "partial")
        _ = try await store.markAttempt(new.submissionId, AttemptMarker(attempt: 1, owner: "p1", at: at))
        _ = try await store.settle(new.submissionId, attemptId: claimed.attemptId, .completed(["text": "ok"]), at: at)
        return new.submissionId
    }
}
