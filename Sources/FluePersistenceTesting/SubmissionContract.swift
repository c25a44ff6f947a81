import FluePersistence
import FlueRuntime
import Foundation

extension PersistenceContract {
    static func newSubmission(
        _ key: SessionKey, id: String = unique("sub"), input: JSONValue = ["message": "hi"],
        kind: SubmissionKind = .direct, timeout: Duration = .seconds(3600)
    ) -> NewSubmission {
        NewSubmission(
            submissionId: id, key: key, kind: kind, input: input, acceptedAt: Date(), maxAttempts: 10, timeout: timeout)
    }

    static let contractAgent = "contract-agent"

    /// A session of an agent no application registers, so servers sharing the test database
    /// never pick up what the checks leave behind.
    static func freshKey() -> SessionKey {
        SessionKey(agent: contractAgent, instanceId: unique("i"))
    }

    /// Claims the runnable head of `key`, failing the check when there is none.
    static func claimHead(
        _ store: any SubmissionStore, _ key: SessionKey, owner: String = "p1", lease: TimeInterval = 30,
        check: String = #function
    ) async throws -> SubmissionRecord {
        let heads = try await store.runnableHeads(agents: [contractAgent], limit: 10_000).filter { $0.key == key }
        guard let head = heads.first else { throw ContractViolation(check: check, message: "no runnable head for \(key)") }
        try expect(heads.count == 1, "one head per session, got \(heads.count)", check: check)
        let now = Date()
        guard
            let claimed = try await store.claim(
                head.submissionId, owner: owner, attemptId: unique("att"), now: now, leaseUntil: now.addingTimeInterval(lease))
        else { throw ContractViolation(check: check, message: "claiming the head failed") }
        return claimed
    }

    static let submissionChecks: [ContractCheck] = [
        ContractCheck(name: "submissions: admission is idempotent on the id; a different input conflicts") { stores, _ in
            let store = stores.submissions
            let key = freshKey()
            let first = newSubmission(key, kind: .dispatch)
            guard case .admitted(let record) = try await store.admit(first) else {
                throw ContractViolation(check: "admit", message: "first admission must be new")
            }
            try expect(record.status == .queued && record.attemptCount == 0, "queued, no attempt yet")
            try expect(record.maxAttempts == 10 && record.timeoutMs == 3_600_000, "limits stored")
            let again = try await store.admit(first)
            try expect(again == .existing(record), "same id + same input returns the original record: \(again)")
            var changed = first
            changed.input = ["message": "something else"]
            do {
                _ = try await store.admit(changed)
                throw ContractViolation(check: "admit", message: "a different input must conflict")
            } catch let error as SubmissionStoreError {
                try expect(error == .conflict(submissionId: first.submissionId), "conflict, got \(error)")
            }
            let stored = try await store.submission(first.submissionId)
            try expect(stored?.input == first.input && stored?.kind == .dispatch, "the first input is kept")
            try expect(try await store.submission(unique("sub")) == nil, "unknown ids are nil")
        },
        ContractCheck(name: "submissions: one runnable head per session, in admission order; sessions are independent") {
            stores, _ in
            let store = stores.submissions
            let key = freshKey()
            let other = freshKey()
            var ids: [String] = []
            for index in 0..<3 {
                let submission = newSubmission(key, input: ["message": .string("m\(index)")])
                ids.append(submission.submissionId)
                _ = try await store.admit(submission)
            }
            let otherId = try await store.admit(newSubmission(other)).record.submissionId
            let heads = try await store.runnableHeads(agents: [contractAgent], limit: 10_000)
            try expect(heads.filter { $0.key == key }.map(\.submissionId) == [ids[0]], "head of key is the first")
            try expect(heads.filter { $0.key == other }.map(\.submissionId) == [otherId], "other session runs in parallel")
            try expect(
                try await store.runnableHeads(agents: ["another-agent"], limit: 10_000).allSatisfy { $0.key.agent == "another-agent" },
                "only the agents asked for are listed")
            let now = Date()
            let notHead = try await store.claim(
                ids[1], owner: "p1", attemptId: unique("att"), now: now, leaseUntil: now.addingTimeInterval(30))
            try expect(notHead == nil, "a submission behind the head cannot be claimed")
            var order: [String] = []
            for _ in 0..<3 {
                let claimed = try await claimHead(store, key)
                try expect(claimed.status == .running && claimed.attemptCount == 1 && claimed.owner == "p1", "claimed")
                try expect(claimed.startedAt != nil, "startedAt set on first start")
                try expect(
                    try await store.runnableHeads(agents: [contractAgent], limit: 10_000).allSatisfy { $0.key != key },
                    "nothing runnable in a session while its head runs")
                order.append(claimed.submissionId)
                try expect(
                    try await store.settle(claimed.submissionId, attemptId: claimed.attemptId, .completed(["n": 1]), at: Date()),
                    "settle")
            }
            try expect(order == ids, "FIFO: \(order) vs \(ids)")
        },
        ContractCheck(name: "submissions: concurrent claims of one head have exactly one winner") { stores, _ in
            let store = stores.submissions
            for _ in 0..<10 {
                let key = freshKey()
                let id = try await store.admit(newSubmission(key)).record.submissionId
                let now = Date()
                let winners = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for claimer in 0..<4 {
                        group.addTask {
                            try await store.claim(
                                id, owner: "p\(claimer)", attemptId: unique("att"), now: now,
                                leaseUntil: now.addingTimeInterval(30)) != nil
                        }
                    }
                    var count = 0
                    for try await won in group where won { count += 1 }
                    return count
                }
                try expect(winners == 1, "exactly one claimer wins, got \(winners)")
                try expect(try await store.submission(id)?.attemptCount == 1, "one attempt counted")
            }
        },
        ContractCheck(name: "submissions: attempt writes are compare-and-set on the attempt id") { stores, _ in
            let store = stores.submissions
            let key = freshKey()
            _ = try await store.admit(newSubmission(key))
            let claimed = try await claimHead(store, key)
            let attempt = try requireValue(claimed.attemptId)
            let journal = TurnJournal(phase: .modelRequestStarted, turn: 0, streamKey: "\(attempt):0")
            try expect(try await store.markInputApplied(claimed.submissionId, attemptId: attempt, at: Date()), "input applied")
            try expect(try await store.writeJournal(claimed.submissionId, attemptId: attempt, journal), "journal write")
            try expect(!(try await store.writeJournal(claimed.submissionId, attemptId: "stale", journal)), "stale journal write")
            try expect(!(try await store.markInputApplied(claimed.submissionId, attemptId: "stale", at: Date())), "stale mark")
            try expect(!(try await store.requeue(claimed.submissionId, attemptId: "stale")), "stale requeue")
            try expect(
                !(try await store.settle(claimed.submissionId, attemptId: "stale", .failed(["type": "x"]), at: Date())),
                "stale settle")
            let stored = try await store.submission(claimed.submissionId)
            try expect(stored?.journal == journal, "journal round-trips: \(String(describing: stored?.journal))")
            try expect(stored?.inputAppliedAt != nil && stored?.status == .running, "still running, input applied")
            var tools = journal
            tools.phase = .toolsRequested
            tools.tools = [
                .init(toolCallId: "c1", toolName: "t", state: .finished, result: "ok", isError: false),
                .init(toolCallId: "c2", toolName: "t", state: .started),
            ]
            try expect(try await store.writeJournal(claimed.submissionId, attemptId: attempt, tools), "replace journal")
            try expect(try await store.submission(claimed.submissionId)?.journal == tools, "journal replaced")
        },
        ContractCheck(name: "submissions: stream chunks and attempt markers are written once") { stores, _ in
            let store = stores.submissions
            let key = freshKey()
            let id = try await store.admit(newSubmission(key)).record.submissionId
            try expect(try await store.appendStreamChunk(id, streamKey: "a:0", index: 1, text: "world"), "chunk 1")
            try expect(try await store.appendStreamChunk(id, streamKey: "a:0", index: 0, text: "hello "), "chunk 0")
            try expect(!(try await store.appendStreamChunk(id, streamKey: "a:0", index: 0, text: "other")), "insert-once")
            try expect(try await store.appendStreamChunk(id, streamKey: "a:1", index: 0, text: "next turn"), "other key")
            try expect(try await store.streamChunks(id, streamKey: "a:0") == ["hello ", "world"], "in index order")
            try expect(try await store.streamChunks(id, streamKey: "missing").isEmpty, "missing key is empty")
            let marker = AttemptMarker(attempt: 1, owner: "p1", at: Date(timeIntervalSince1970: 1_764_000_000))
            try expect(try await store.markAttempt(id, marker), "marker 1")
            try expect(!(try await store.markAttempt(id, AttemptMarker(attempt: 1, owner: "p2", at: Date()))), "marker once")
            try expect(try await store.markAttempt(id, AttemptMarker(attempt: 2, owner: "p2", at: Date())), "marker 2")
            let markers = try await store.attemptMarkers(id)
            try expect(markers.map(\.attempt) == [1, 2] && markers.first?.owner == "p1", "markers: \(markers)")
        },
        ContractCheck(name: "submissions: expired leases are listed, renewed ones are not; take-over is won once") {
            stores, _ in
            let store = stores.submissions
            let expiredKey = freshKey()
            let aliveKey = freshKey()
            _ = try await store.admit(newSubmission(expiredKey))
            _ = try await store.admit(newSubmission(aliveKey))
            let expired = try await claimHead(store, expiredKey, owner: "dead", lease: -60)
            let alive = try await claimHead(store, aliveKey, owner: "alive", lease: -60)
            try await store.renewLeases(owner: "alive", attemptIds: [alive.attemptId ?? ""], until: Date().addingTimeInterval(30))
            try await store.renewLeases(owner: "dead", attemptIds: ["an-attempt-that-ended"], until: Date().addingTimeInterval(30))
            let listed = try await store.expiredLeases(agents: [contractAgent], now: Date(), limit: 10_000).map(\.submissionId)
            try expect(listed.contains(expired.submissionId), "expired lease listed")
            try expect(!listed.contains(alive.submissionId), "renewed lease not listed")
            try expect(
                !(try await store.expiredLeases(agents: ["another-agent"], now: Date(), limit: 10_000)
                    .contains { $0.submissionId == expired.submissionId }), "only the agents asked for are listed")
            let now = Date()
            let takers = try await withThrowingTaskGroup(of: SubmissionRecord?.self) { group in
                for taker in 0..<3 {
                    group.addTask {
                        try await store.takeOver(
                            expired.submissionId, expectedAttemptId: expired.attemptId ?? "", owner: "r\(taker)",
                            attemptId: unique("att"), now: now, leaseUntil: now.addingTimeInterval(30))
                    }
                }
                var won: [SubmissionRecord] = []
                for try await record in group { if let record { won.append(record) } }
                return won
            }
            try expect(takers.count == 1, "one recoverer wins, got \(takers.count)")
            try expect(takers.first?.attemptCount == 2 && takers.first?.status == .running, "a new attempt is counted")
            let notExpired = try await store.takeOver(
                alive.submissionId, expectedAttemptId: alive.attemptId ?? "", owner: "r", attemptId: unique("att"),
                now: Date(), leaseUntil: Date().addingTimeInterval(30))
            try expect(notExpired == nil, "a live lease cannot be taken over")
            let taken = try requireValue(takers.first)
            try expect(
                try await store.releaseLease(taken.submissionId, attemptId: taken.attemptId ?? "", at: Date().addingTimeInterval(-1)),
                "release")
            try expect(
                try await store.expiredLeases(agents: [contractAgent], now: Date(), limit: 10_000).contains { $0.submissionId == taken.submissionId },
                "a released lease is expired at once")
        },
        ContractCheck(name: "submissions: requeue returns a submission to the head of its queue") { stores, _ in
            let store = stores.submissions
            let key = freshKey()
            let first = try await store.admit(newSubmission(key)).record.submissionId
            _ = try await store.admit(newSubmission(key))
            let claimed = try await claimHead(store, key)
            try expect(claimed.submissionId == first, "first claimed")
            try expect(try await store.requeue(first, attemptId: claimed.attemptId ?? ""), "requeue")
            let record = try await store.submission(first)
            try expect(record?.status == .queued && record?.owner == nil && record?.attemptId == nil, "queued again")
            let again = try await claimHead(store, key, owner: "p2")
            try expect(again.submissionId == first && again.attemptCount == 2, "same head, second attempt")
        },
        ContractCheck(name: "submissions: the first terminal state wins") { stores, _ in
            let store = stores.submissions
            let key = freshKey()
            _ = try await store.admit(newSubmission(key))
            let claimed = try await claimHead(store, key)
            async let a = store.settle(claimed.submissionId, attemptId: nil, .completed(["text": "a"]), at: Date())
            async let b = store.settle(claimed.submissionId, attemptId: claimed.attemptId, .failed(["type": "b"]), at: Date())
            let wins = [try await a, try await b].filter { $0 }.count
            try expect(wins == 1, "exactly one settlement wins, got \(wins)")
            let record = try await store.submission(claimed.submissionId)
            try expect(record?.status.isSettled == true && record?.settledAt != nil, "settled")
            try expect(
                (record?.status == .completed && record?.result == ["text": "a"])
                    || (record?.status == .failed && record?.error == ["type": "b"]), "the winner's value is kept")
            try expect(
                !(try await store.settle(claimed.submissionId, attemptId: nil, .failed(["type": "late"]), at: Date())),
                "a later settle loses")
            try expect(!(try await store.requeue(claimed.submissionId, attemptId: claimed.attemptId ?? "")), "no requeue")
            try expect(
                !(try await store.expiredLeases(agents: [contractAgent], now: Date().addingTimeInterval(3600), limit: 10_000)
                    .contains { $0.submissionId == claimed.submissionId }), "settled submissions hold no lease")
        },
        ContractCheck(name: "submissions: session deletion waits for unsettled work and blocks admission") { stores, _ in
            let store = stores.submissions
            let key = freshKey()
            _ = try await store.admit(newSubmission(key))
            try expect(!(try await store.beginSessionDeletion(key)), "not while a submission is unsettled")
            let claimed = try await claimHead(store, key)
            _ = try await store.settle(claimed.submissionId, attemptId: claimed.attemptId, .completed(.null), at: Date())
            try expect(try await store.beginSessionDeletion(key), "once everything settled")
            do {
                _ = try await store.admit(newSubmission(key))
                throw ContractViolation(check: "deletion", message: "admission must fail while the session is deleted")
            } catch let error as SubmissionStoreError {
                try expect(error == .sessionDeleting(key), "sessionDeleting, got \(error)")
            }
            try await store.finishSessionDeletion(key)
            try expect(try await store.submission(claimed.submissionId) == nil, "settled submissions removed")
            _ = try await store.admit(newSubmission(key))
            try expect(try await store.runnableHeads(agents: [contractAgent], limit: 10_000).contains { $0.key == key }, "admission works again")
        },
    ]
}

/// Unwraps or fails the check.
func requireValue<T>(_ value: T?, check: String = #function) throws -> T {
    guard let value else { throw ContractViolation(check: check, message: "unexpected nil") }
    return value
}
