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
        ContractCheck(name: "submissions: a call awaiting approval parks its submission at the head of its session until decided") {
            stores, _ in
            let store = stores.submissions
            let key = freshKey()
            _ = try await store.admit(newSubmission(key))
            let later = newSubmission(key)
            _ = try await store.admit(later)
            let claimed = try await claimHead(store, key)
            let attemptId = try requireValue(claimed.attemptId)
            let now = Date(timeIntervalSince1970: 1_800_000_300)
            let calls = ["c1", "c2"].map {
                ToolApprovalRecord(
                    callId: $0, tool: "refund", arguments: ["amount": 120], requestedAt: now,
                    expiresAt: now.addingTimeInterval(60))
            }
            try expect(
                !(try await store.awaitApproval(claimed.submissionId, attemptId: "att_other", approvals: calls)),
                "only the attempt holding it parks it")
            try expect(
                try await store.awaitApproval(claimed.submissionId, attemptId: attemptId, approvals: calls), "parked")
            let parked = try requireValue(try await store.submission(claimed.submissionId))
            try expect(parked.status == .awaitingApproval && !parked.status.isSettled, "awaiting_approval, unsettled")
            try expect(parked.owner == nil && parked.attemptId == nil && parked.leaseExpiresAt == nil, "no owner, no lease")
            try expect(parked.approvals.map(\.callId) == ["c1", "c2"] && parked.approvals[0].arguments == ["amount": 120], "calls stored")
            try expect(
                sameMillisecond(parked.approvals[0].expiresAt, now.addingTimeInterval(60)), "expiry stored")
            let heads = try await store.runnableHeads(agents: [contractAgent], limit: 10_000).filter { $0.key == key }
            try expect(heads.isEmpty, "the later submission waits behind it: \(heads.map(\.submissionId))")
            try expect(
                try await store.awaitingApproval(agents: [contractAgent], limit: 10_000).contains { $0.submissionId == claimed.submissionId },
                "listed as awaiting")
            try expect(
                try await store.expiredLeases(agents: [contractAgent], now: Date().addingTimeInterval(3600), limit: 10_000)
                    .allSatisfy { $0.submissionId != claimed.submissionId }, "a parked submission holds no lease")

            guard case .decided(let first)? = try await store.decideApproval(
                claimed.submissionId, callId: "c1", decision: .approve, reason: nil, at: now)
            else { throw ContractViolation(check: "decide", message: "the first decision is recorded") }
            try expect(first.status == .awaitingApproval, "still waiting for c2")
            guard case .alreadyDecided(let again)? = try await store.decideApproval(
                claimed.submissionId, callId: "c1", decision: .deny, reason: "late", at: now)
            else { throw ContractViolation(check: "decide", message: "a second decision changes nothing") }
            try expect(again.approvals[0].decision == .approve, "the first decision stands")
            try expect(
                try await store.decideApproval(claimed.submissionId, callId: "c9", decision: .approve, reason: nil, at: now) == nil,
                "unknown calls are nil")
            guard case .decided(let second)? = try await store.decideApproval(
                claimed.submissionId, callId: "c2", decision: .deny, reason: "too much", at: now)
            else { throw ContractViolation(check: "decide", message: "the second call is recorded") }
            try expect(second.status == .queued, "queued again once nothing is pending")
            try expect(second.approvals[1].decision == .deny && second.approvals[1].reason == "too much", "reason kept")
            let resumed = try await claimHead(store, key)
            try expect(resumed.submissionId == claimed.submissionId, "it is the head again, before the later one")
            try expect(resumed.approvals.compactMap(\.decision) == [.approve, .deny], "decisions survive the claim")

            // Cancelled while waiting: aborted at once.
            try expect(
                try await store.awaitApproval(resumed.submissionId, attemptId: try requireValue(resumed.attemptId), approvals: calls),
                "parked again")
            guard case .aborted(let aborted)? = try await store.requestCancel(resumed.submissionId, at: now) else {
                throw ContractViolation(check: "cancel", message: "a waiting submission is aborted by a cancel")
            }
            try expect(aborted.status == .aborted, "aborted")
            let next = try await claimHead(store, key)
            try expect(next.submissionId == later.submissionId, "the later one runs now")
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
