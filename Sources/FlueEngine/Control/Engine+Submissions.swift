import FluePersistence
import FlueRuntime
import Foundation

/// Control over accepted agent work: cancel, abort, read by id, list.
extension Engine {
    /// Cancels one submission of agent instance `id` (any process may run it). A queued one is
    /// settled `aborted` at once and the rest of the queue is untouched; a running one has its
    /// model stream and tools cancelled by its owner, a started tool is reported to the model
    /// as interrupted (never run again), and it settles `aborted` with a `submission_settled`
    /// event. Returns `nil` when the instance has no such submission. Throws `FlueError`
    /// (`invalid_payload`, `agent_not_registered`) for a bad address.
    public func cancel(submission submissionId: String, agent: String, id: String) async throws
        -> SubmissionCancellation?
    {
        try await cancel(submission: submissionId, of: try checkedKey(agent: agent, id: id))
    }

    /// ``cancel(submission:agent:id:)`` for an address checked by ``instanceKey(agent:id:exposedOnly:)``.
    package func cancel(submission submissionId: String, of key: SessionKey) async throws -> SubmissionCancellation? {
        guard let request = try await coordinator.cancel(submissionId, of: key) else { return nil }
        switch request {
        case .aborted(let record): return .aborted(SubmissionView(record))
        case .requested(let record): return .stopping(SubmissionView(record))
        case .alreadySettled(let record): return .alreadySettled(SubmissionView(record))
        }
    }

    /// Cancels every unsettled submission of agent instance `id`: the queued ones first (so
    /// none starts meanwhile), then the running one. Returns what each cancel did, oldest
    /// submission first; empty when nothing was queued or running.
    public func abort(agent: String, id: String) async throws -> [SubmissionCancellation] {
        try await abort(try checkedKey(agent: agent, id: id))
    }

    /// ``abort(agent:id:)`` for a checked address.
    package func abort(_ key: SessionKey) async throws -> [SubmissionCancellation] {
        let unsettled = try await coordinator.unsettled(of: key)
        var done: [String: SubmissionCancellation] = [:]
        for record in unsettled where record.status == .queued {
            done[record.submissionId] = try await cancel(submission: record.submissionId, of: key)
        }
        for record in unsettled where record.status != .queued {
            done[record.submissionId] = try await cancel(submission: record.submissionId, of: key)
        }
        return unsettled.compactMap { done[$0.submissionId] }
    }

    /// A submission of agent instance `id`, or `nil` when the instance has none with that id.
    public func submission(_ submissionId: String, agent: String, id: String) async throws -> SubmissionView? {
        try await submission(submissionId, of: try checkedKey(agent: agent, id: id))
    }

    package func submission(_ submissionId: String, of key: SessionKey) async throws -> SubmissionView? {
        guard let record = try await stores.submissions.submission(submissionId),
            record.key.agent == key.agent, record.key.instanceId == key.instanceId
        else { return nil }
        return SubmissionView(record)
    }

    /// The submissions of agent instance `id`, newest first, `limit` (1–1000) per page; pass a
    /// page's `nextCursor` to read the next. Throws `FlueError` `invalid_payload` for a cursor
    /// this server did not hand out.
    public func submissions(agent: String, id: String, limit: Int = 50, cursor: String? = nil) async throws
        -> SubmissionPage
    {
        try await submissions(of: try checkedKey(agent: agent, id: id), limit: limit, cursor: cursor)
    }

    package func submissions(of key: SessionKey, limit: Int, cursor: String?) async throws -> SubmissionPage {
        let limit = min(max(limit, 1), 1000)
        var before: Int64?
        if let cursor {
            guard cursor.hasPrefix("s"), cursor.count <= 19, let sequence = Int64(cursor.dropFirst()), sequence >= 0 else {
                throw FlueError(.invalidPayload, "cursor \"\(cursor)\" is not one this server handed out")
            }
            before = sequence
        }
        // One more than asked: whether an older page exists.
        let records = try await stores.submissions.submissions(
            agent: key.agent, instanceId: key.instanceId, before: before, limit: limit + 1)
        let page = records.prefix(limit)
        let next = records.count > limit ? page.last.map { "s\($0.sequence)" } : nil
        return SubmissionPage(submissions: page.map(SubmissionView.init), nextCursor: next)
    }

    /// Waits until the submission settles (in any process) and returns it; returns it as it is
    /// once `within` passes first. Throws ``EngineError/waitAbandoned`` when `abandon` finishes
    /// (the client left) and ``EngineError/shuttingDown(_:)`` when shutdown begins.
    package func settledSubmission(
        _ submissionId: String, of key: SessionKey, within: Duration?, abandon: AsyncStream<Void>?
    ) async throws -> SubmissionView {
        let (signal, finish) = AsyncStream<Void>.makeStream()
        let timedOut = Latch()
        let timer = Task {
            guard let within else { return }
            try? await Task.sleep(for: within)
            if !Task.isCancelled {
                timedOut.set()
                finish.finish()
            }
        }
        let forward = Task {
            guard let abandon else { return }
            for await _ in abandon {}
            if !Task.isCancelled { finish.finish() }
        }
        defer {
            timer.cancel()
            forward.cancel()
        }
        do {
            let (record, _) = try await coordinator.waitForSettlement(
                submissionId, key: key, after: nil, shutdown: shutdown, abandon: signal)
            return SubmissionView(record)
        } catch EngineError.waitAbandoned where timedOut.isSet {
            guard let view = try await submission(submissionId, of: key) else { throw EngineError.waitAbandoned }
            return view
        }
    }
}
