import FlueRuntime
import Foundation
import Synchronization

/// Submissions in process memory: ordering, leases and settlement within one process; lost on exit.
public final class InMemorySubmissionStore: SubmissionStore {
    private struct State {
        var records: [String: SubmissionRecord] = [:]
        var nextSequence: Int64 = 1
        var chunks: [String: [Int: String]] = [:]
        var markers: [String: [Int: AttemptMarker]] = [:]
        var deleting: Set<SessionKey> = []
    }

    private let state = Mutex(State())

    public init() {}

    public func admit(_ new: NewSubmission) throws -> Admission {
        try state.withLock { state in
            if let existing = state.records[new.submissionId] {
                guard existing.key == new.key, existing.kind == new.kind, existing.input == new.input else {
                    throw SubmissionStoreError.conflict(submissionId: new.submissionId)
                }
                return .existing(existing)
            }
            guard !state.deleting.contains(new.key) else { throw SubmissionStoreError.sessionDeleting(new.key) }
            let record = SubmissionRecord(
                submissionId: new.submissionId, sequence: state.nextSequence, key: new.key, kind: new.kind,
                input: new.input, status: .queued, acceptedAt: new.acceptedAt, maxAttempts: new.maxAttempts,
                timeoutMs: new.timeout.wholeMilliseconds, streamOffset: new.streamOffset, traceContext: new.traceContext)
            state.nextSequence += 1
            state.records[new.submissionId] = record
            return .admitted(record)
        }
    }

    public func submission(_ submissionId: String) -> SubmissionRecord? {
        state.withLock { $0.records[submissionId] }
    }

    /// Oldest unsettled submission per session.
    private static func heads(_ records: [String: SubmissionRecord]) -> [SessionKey: SubmissionRecord] {
        var heads: [SessionKey: SubmissionRecord] = [:]
        for record in records.values where !record.status.isSettled {
            if let current = heads[record.key], current.sequence < record.sequence { continue }
            heads[record.key] = record
        }
        return heads
    }

    public func runnableHeads(agents: Set<String>, limit: Int) -> [SubmissionRecord] {
        state.withLock { state in
            Array(
                Self.heads(state.records).values.filter { $0.status == .queued && agents.contains($0.key.agent) }
                    .sorted { $0.sequence < $1.sequence }.prefix(limit))
        }
    }

    public func claim(_ submissionId: String, owner: String, attemptId: String, now: Date, leaseUntil: Date)
        -> SubmissionRecord?
    {
        state.withLock { state in
            guard var record = state.records[submissionId], record.status == .queued,
                Self.heads(state.records)[record.key]?.submissionId == submissionId
            else { return nil }
            record.status = .running
            record.attemptId = attemptId
            record.owner = owner
            record.leaseExpiresAt = leaseUntil
            record.attemptCount += 1
            record.startedAt = record.startedAt ?? now
            record.journal = nil
            state.records[submissionId] = record
            return record
        }
    }

    public func renewLeases(owner: String, attemptIds: [String], until: Date) {
        let attempts = Set(attemptIds)
        state.withLock { state in
            for (id, record) in state.records
            where record.status == .running && record.owner == owner && attempts.contains(record.attemptId ?? "") {
                state.records[id]?.leaseExpiresAt = until
            }
        }
    }

    /// Applies `change` when the submission is running under `attemptId`.
    private func update(_ id: String, attemptId: String, _ change: (inout SubmissionRecord) -> Void) -> Bool {
        state.withLock { state in
            guard var record = state.records[id], record.status == .running, record.attemptId == attemptId else {
                return false
            }
            change(&record)
            state.records[id] = record
            return true
        }
    }

    public func markInputApplied(_ submissionId: String, attemptId: String, at: Date) -> Bool {
        update(submissionId, attemptId: attemptId) { $0.inputAppliedAt = $0.inputAppliedAt ?? at }
    }

    public func writeJournal(_ submissionId: String, attemptId: String, _ journal: TurnJournal) -> Bool {
        update(submissionId, attemptId: attemptId) { $0.journal = journal }
    }

    public func appendStreamChunk(_ submissionId: String, streamKey: String, index: Int, text: String) -> Bool {
        state.withLock { state in
            let key = submissionId + "\u{0}" + streamKey
            guard state.chunks[key]?[index] == nil else { return false }
            state.chunks[key, default: [:]][index] = text
            return true
        }
    }

    public func streamChunks(_ submissionId: String, streamKey: String) -> [String] {
        state.withLock { state in
            (state.chunks[submissionId + "\u{0}" + streamKey] ?? [:]).sorted { $0.key < $1.key }.map(\.value)
        }
    }

    public func markAttempt(_ submissionId: String, _ marker: AttemptMarker) -> Bool {
        state.withLock { state in
            guard state.markers[submissionId]?[marker.attempt] == nil else { return false }
            state.markers[submissionId, default: [:]][marker.attempt] = marker
            return true
        }
    }

    public func attemptMarkers(_ submissionId: String) -> [AttemptMarker] {
        state.withLock { ($0.markers[submissionId] ?? [:]).values.sorted { $0.attempt < $1.attempt } }
    }

    public func expiredLeases(agents: Set<String>, now: Date, limit: Int) -> [SubmissionRecord] {
        state.withLock { state in
            Array(
                state.records.values.filter {
                    $0.status == .running && ($0.leaseExpiresAt ?? .distantPast) < now && agents.contains($0.key.agent)
                }
                    .sorted { $0.sequence < $1.sequence }.prefix(limit))
        }
    }

    public func takeOver(
        _ submissionId: String, expectedAttemptId: String, owner: String, attemptId: String, now: Date, leaseUntil: Date
    ) -> SubmissionRecord? {
        state.withLock { state in
            guard var record = state.records[submissionId], record.status == .running,
                record.attemptId == expectedAttemptId, (record.leaseExpiresAt ?? .distantPast) < now
            else { return nil }
            record.attemptId = attemptId
            record.owner = owner
            record.leaseExpiresAt = leaseUntil
            record.attemptCount += 1
            state.records[submissionId] = record
            return record
        }
    }

    public func requeue(_ submissionId: String, attemptId: String) -> Bool {
        state.withLock { state in
            guard var record = state.records[submissionId], record.status == .running, record.attemptId == attemptId
            else { return false }
            record.status = .queued
            record.attemptId = nil
            record.owner = nil
            record.leaseExpiresAt = nil
            record.journal = nil
            state.records[submissionId] = record
            return true
        }
    }

    public func releaseLease(_ submissionId: String, attemptId: String, at: Date) -> Bool {
        update(submissionId, attemptId: attemptId) { $0.leaseExpiresAt = at }
    }

    public func settle(_ submissionId: String, attemptId: String?, _ outcome: Outcome, at: Date) -> Bool {
        state.withLock { state in
            guard var record = state.records[submissionId], !record.status.isSettled else { return false }
            if let attemptId, record.attemptId != attemptId { return false }
            record.status = SubmissionStatus.settled(by: outcome)
            switch outcome {
            case .completed(let value): record.result = value
            case .failed(let error): record.error = error
            }
            record.settledAt = at
            record.leaseExpiresAt = nil
            state.records[submissionId] = record
            state.chunks = state.chunks.filter { !$0.key.hasPrefix(submissionId + "\u{0}") }
            return true
        }
    }

    public func requestCancel(_ submissionId: String, at: Date) -> CancelRequest? {
        state.withLock { state in
            guard var record = state.records[submissionId] else { return nil }
            switch record.status {
            case .queued, .awaitingApproval:
                record.status = .aborted
                record.error = CancelRequest.abortedError
                record.settledAt = at
                record.cancelRequestedAt = at
                state.records[submissionId] = record
                return .aborted(record)
            case .running:
                record.cancelRequestedAt = record.cancelRequestedAt ?? at
                state.records[submissionId] = record
                return .requested(record)
            case .completed, .failed, .aborted:
                return .alreadySettled(record)
            }
        }
    }

    public func submissions(agent: String, instanceId: String, before: Int64?, limit: Int) -> [SubmissionRecord] {
        state.withLock { state in
            Array(
                state.records.values.filter {
                    $0.key.agent == agent && $0.key.instanceId == instanceId && $0.sequence < (before ?? .max)
                }
                .sorted { $0.sequence > $1.sequence }.prefix(max(limit, 0)))
        }
    }

    public func awaitApproval(_ submissionId: String, attemptId: String, approvals: [ToolApprovalRecord]) -> Bool {
        state.withLock { state in
            guard var record = state.records[submissionId], record.status == .running, record.attemptId == attemptId
            else { return false }
            record.status = .awaitingApproval
            record.attemptId = nil
            record.owner = nil
            record.leaseExpiresAt = nil
            record.startedAt = nil
            record.approvals = approvals
            state.records[submissionId] = record
            return true
        }
    }

    public func decideApproval(
        _ submissionId: String, callId: String, decision: ToolApprovalRecord.Decision, reason: String?, at: Date
    ) -> ApprovalDecisionResult? {
        state.withLock { state in
            guard var record = state.records[submissionId] else { return nil }
            let result = record.applyDecision(callId: callId, decision: decision, reason: reason, at: at)
            if case .decided? = result { state.records[submissionId] = record }
            return result
        }
    }

    public func awaitingApproval(agents: Set<String>, limit: Int) -> [SubmissionRecord] {
        state.withLock { state in
            Array(
                state.records.values.filter { $0.status == .awaitingApproval && agents.contains($0.key.agent) }
                    .sorted { $0.sequence < $1.sequence }.prefix(max(limit, 0)))
        }
    }

    public func beginSessionDeletion(_ key: SessionKey) -> Bool {
        state.withLock { state in
            guard !state.records.values.contains(where: { $0.key == key && !$0.status.isSettled }) else { return false }
            state.deleting.insert(key)
            return true
        }
    }

    public func finishSessionDeletion(_ key: SessionKey) {
        state.withLock { state in
            Self.remove(state.records.values.filter { $0.key == key && $0.status.isSettled }.map(\.submissionId), from: &state)
            state.deleting.remove(key)
        }
    }

    public func openCounts() -> [SubmissionStatus: Int] {
        state.withLock { state in
            state.records.values.reduce(into: [:]) { counts, record in
                if !record.status.isSettled { counts[record.status, default: 0] += 1 }
            }
        }
    }

    /// Removes submissions with their stream chunks and attempt markers.
    private static func remove(_ submissionIds: [String], from state: inout State) {
        guard !submissionIds.isEmpty else { return }
        let removed = Set(submissionIds)
        for id in submissionIds {
            state.records[id] = nil
            state.markers[id] = nil
        }
        state.chunks = state.chunks.filter { key, _ in
            !removed.contains(String(key.prefix { $0 != "\u{0}" }))
        }
    }

    /// Removes at most `limit` settled submissions that settled before `settledBefore` or, with
    /// `keepAtMost`, beyond that many newest settled ones; returns how many.
    func removeSettled(settledBefore: Date, keepAtMost: Int?, limit: Int) -> Int {
        state.withLock { state in
            let settled = state.records.values.filter(\.status.isSettled)
                .sorted { ($0.settledAt ?? $0.acceptedAt, $0.sequence) < ($1.settledAt ?? $1.acceptedAt, $1.sequence) }
            let excess = keepAtMost.map { max(0, settled.count - $0) } ?? 0
            var doomed: [String] = []
            for (index, record) in settled.enumerated() where doomed.count < limit {
                guard index < excess || (record.settledAt ?? record.acceptedAt) < settledBefore else { break }
                doomed.append(record.submissionId)
            }
            Self.remove(doomed, from: &state)
            return doomed.count
        }
    }

    /// The instances (default harness and session) that have submissions.
    func instanceKeys() -> Set<SessionKey> {
        state.withLock { state in Set(state.records.values.map { SessionKey(agent: $0.key.agent, instanceId: $0.key.instanceId) }) }
    }

    /// The stream paths (`agents/<name>/<id>`) of instances with unsettled submissions or one
    /// settled since `settledSince`.
    func busyInstancePaths(settledSince: Date) -> Set<String> {
        state.withLock { state in
            Set(
                state.records.values.filter { !$0.status.isSettled || ($0.settledAt ?? .distantPast) >= settledSince }
                    .map { "agents/\($0.key.agent)/\($0.key.instanceId)" })
        }
    }
}

