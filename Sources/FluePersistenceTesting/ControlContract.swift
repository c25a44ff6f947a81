import FluePersistence
import FlueRuntime
import Foundation

extension PersistenceContract {
    static let controlChecks: [ContractCheck] = [
        ContractCheck(name: "submissions: a queued cancel settles aborted at once and is never claimed") { stores, _ in
            let store = stores.submissions
            let key = freshKey()
            var first = newSubmission(key)
            first.streamOffset = "0000000000000000_0000000000000007"
            _ = try await store.admit(first)
            let second = newSubmission(key)
            _ = try await store.admit(second)
            let at = Date(timeIntervalSince1970: 1_800_000_000.250)
            guard case .aborted(let aborted)? = try await store.requestCancel(first.submissionId, at: at) else {
                throw ContractViolation(check: "cancel", message: "a queued submission must be aborted")
            }
            try expect(aborted.status == .aborted && sameMillisecond(aborted.settledAt, at), "aborted at the request time: \(aborted)")
            try expect(aborted.error?["type"] == "aborted", "error type aborted: \(String(describing: aborted.error))")
            try expect(aborted.streamOffset == first.streamOffset, "the admission offset is kept")
            let stored = try await requireValue(try await store.submission(first.submissionId))
            try expect(stored.status == .aborted && stored.status.isSettled, "stored as aborted")
            // The next one in the queue is the head now.
            let head = try await claimHead(store, key)
            try expect(head.submissionId == second.submissionId, "the rest of the queue runs: \(head.submissionId)")
            guard case .alreadySettled(let again)? = try await store.requestCancel(first.submissionId, at: Date()) else {
                throw ContractViolation(check: "cancel", message: "a second cancel must find it settled")
            }
            try expect(sameMillisecond(again.settledAt, at), "a second cancel changes nothing")
            try expect(try await store.requestCancel(unique("sub"), at: Date()) == nil, "unknown ids are nil")
        },
        ContractCheck(name: "submissions: a running cancel is recorded once; an aborted settlement is stored as aborted") {
            stores, _ in
            let store = stores.submissions
            let key = freshKey()
            _ = try await store.admit(newSubmission(key))
            let claimed = try await claimHead(store, key)
            let first = Date(timeIntervalSince1970: 1_800_000_100)
            guard case .requested(let requested)? = try await store.requestCancel(claimed.submissionId, at: first) else {
                throw ContractViolation(check: "cancel", message: "a running submission must be marked")
            }
            try expect(requested.status == .running && sameMillisecond(requested.cancelRequestedAt, first), "marked, still running")
            guard case .requested(let again)? = try await store.requestCancel(claimed.submissionId, at: first.addingTimeInterval(5))
            else { throw ContractViolation(check: "cancel", message: "still running") }
            try expect(sameMillisecond(again.cancelRequestedAt, first), "the first request time is kept")
            let error: JSONValue = ["type": "aborted", "message": "cancelled", "details": [:]]
            try expect(
                try await store.settle(claimed.submissionId, attemptId: claimed.attemptId, .failed(error), at: Date()),
                "the owner settles")
            let settled = try await requireValue(try await store.submission(claimed.submissionId))
            try expect(settled.status == .aborted && settled.error == error, "stored as aborted: \(settled.status)")
            guard case .alreadySettled? = try await store.requestCancel(claimed.submissionId, at: Date()) else {
                throw ContractViolation(check: "cancel", message: "settled work is not cancelled")
            }
            // A failure of another type stays failed.
            _ = try await store.admit(newSubmission(key))
            let next = try await claimHead(store, key)
            _ = try await store.settle(
                next.submissionId, attemptId: next.attemptId, .failed(["type": "operation_failed", "message": "x"]), at: Date())
            try expect(try await store.submission(next.submissionId)?.status == .failed, "failed stays failed")
        },
        ContractCheck(name: "submissions: an instance's submissions list newest first across sessions, paged by sequence") {
            stores, _ in
            let store = stores.submissions
            let key = freshKey()
            var ids: [String] = []
            for index in 0..<5 {
                let new = newSubmission(
                    index == 2 ? SessionKey(agent: key.agent, instanceId: key.instanceId, session: "other") : key)
                _ = try await store.admit(new)
                ids.append(new.submissionId)
            }
            _ = try await store.admit(newSubmission(freshKey()))
            let all = try await store.submissions(agent: key.agent, instanceId: key.instanceId, before: nil, limit: 100)
            try expect(all.map(\.submissionId) == ids.reversed(), "newest first, this instance only: \(all.map(\.submissionId))")
            let page = try await store.submissions(agent: key.agent, instanceId: key.instanceId, before: nil, limit: 2)
            try expect(page.map(\.submissionId) == [ids[4], ids[3]], "a page of two")
            let older = try await store.submissions(
                agent: key.agent, instanceId: key.instanceId, before: page.last?.sequence, limit: 10)
            try expect(older.map(\.submissionId) == [ids[2], ids[1], ids[0]], "the rest: \(older.map(\.submissionId))")
            try expect(
                try await store.submissions(agent: key.agent, instanceId: unique("none"), before: nil, limit: 10).isEmpty,
                "an instance without submissions lists none")
        },
        ContractCheck(name: "runs: a cancel request marks an active run once and leaves ended runs alone") { stores, _ in
            let runs = stores.runs
            let runId = unique("run")
            _ = try await runs.createRun(
                RunRecord(runId: runId, workflowName: "w", startedAt: Date(), payload: [:], owner: "p1", heartbeatAt: Date()))
            let at = Date(timeIntervalSince1970: 1_800_000_200)
            let marked = try await requireValue(try await runs.requestCancel(runId, at: at))
            try expect(marked.status == .active && sameMillisecond(marked.cancelRequestedAt, at), "marked: \(marked)")
            let again = try await requireValue(try await runs.requestCancel(runId, at: at.addingTimeInterval(9)))
            try expect(sameMillisecond(again.cancelRequestedAt, at), "the first time is kept")
            try expect(sameMillisecond(try await runs.getRun(runId)?.cancelRequestedAt, at), "stored")
            _ = try await runs.endRun(runId, .failed(["type": "aborted", "message": "x"]), endedAt: Date(), durationMs: 1)
            let ended = try await requireValue(try await runs.requestCancel(runId, at: Date()))
            try expect(ended.status == .errored, "an ended run is returned as it ended: \(ended.status)")
            try expect(try await runs.requestCancel(unique("run"), at: Date()) == nil, "unknown runs are nil")
        },
    ]
}
