import FlueRuntime
import Foundation

/// What one retention pass may remove (``RetentionStore/prune(_:)``).
///
/// Old means: a run that ended, or a submission that settled, before ``olderThan``; an agent
/// instance stream whose last event was appended before it and whose instance has no unsettled
/// submission (queued, running or awaiting approval) and none settled since. Active runs and unsettled submissions are
/// never removed, whatever their age or count.
public struct RetentionRequest: Sendable, Hashable {
    /// The cut-off instant.
    public var olderThan: Date
    /// When set, ended runs and settled submissions beyond this many (newest kept, by end or
    /// settlement time) are removed too, however recent: the in-memory adapter's bound.
    public var keepAtMost: Int?
    /// The most runs, submissions and streams one pass removes of each kind, so one pass holds
    /// the store for a bounded time; the caller repeats while a kind reached it.
    public var batchLimit: Int

    public init(olderThan: Date, keepAtMost: Int? = nil, batchLimit: Int = 1000) {
        self.olderThan = olderThan
        self.keepAtMost = keepAtMost.map { max(0, $0) }
        self.batchLimit = max(1, batchLimit)
    }
}

/// What one retention pass removed.
public struct RetentionReport: Sendable, Hashable {
    /// Ended runs removed with their record, their stream (`runs/<runId>`) and the sessions of
    /// their agents (instance id = run id).
    public var runs: Int
    /// Settled submissions removed with their journal, stream chunks and attempt markers.
    public var submissions: Int
    /// Idle agent instance streams whose events were removed. The stream itself stays (its tail
    /// offset too), so offsets a client holds stay valid and the next event continues the sequence.
    public var agentStreams: Int

    public init(runs: Int = 0, submissions: Int = 0, agentStreams: Int = 0) {
        self.runs = runs
        self.submissions = submissions
        self.agentStreams = agentStreams
    }

    /// Whether any kind reached `limit`: more may be waiting.
    public func reached(_ limit: Int) -> Bool { runs >= limit || submissions >= limit || agentStreams >= limit }
}

/// Removes old, finished work from a store: what keeps a long-running server's memory and
/// tables bounded. Every adapter implements it; the contract suite checks that it removes exactly
/// what is old and finished.
///
/// Contract: a removed run answers `nil` from `getRun` and its stream `nil` from `meta`; a removed
/// submission answers `nil` from `submission(_:)` (so an idempotency key that named it admits anew);
/// an agent stream keeps its tail and its later appends continue the sequence. The sessions a
/// removed run's agents kept (instance id = run id) go with it; an agent instance's conversation
/// is never removed by retention.
public protocol RetentionStore: Sendable {
    func prune(_ request: RetentionRequest) async throws -> RetentionReport
    /// The count bound (``RetentionRequest/keepAtMost``) used when the application sets none:
    /// `nil` (the default) for stores on disk, a bound for the in-memory store, whose records
    /// live in the process's memory.
    var defaultKeepAtMost: Int? { get }
}

extension RetentionStore {
    public var defaultKeepAtMost: Int? { nil }
}

/// Retention over the in-memory stores.
struct InMemoryRetention: RetentionStore {
    /// 1,000 ended runs and 1,000 settled submissions (a few MiB with their events).
    var defaultKeepAtMost: Int? { 1000 }
    let runs: InMemoryRunStore
    let streams: InMemoryEventStreamStore
    let sessions: InMemorySessionStore
    let submissions: InMemorySubmissionStore

    func prune(_ request: RetentionRequest) async -> RetentionReport {
        let runIds = runs.removeEndedRuns(
            endedBefore: request.olderThan, keepAtMost: request.keepAtMost, limit: request.batchLimit)
        streams.removeStreams(runIds.map { "runs/\($0)" })
        // An agent instance a client named like a removed run (it has submissions) keeps its conversation.
        let instances = submissions.instanceKeys()
        await sessions.deleteSessions(ofInstances: Set(runIds)) { instances.contains(SessionKey(agent: $0.agent, instanceId: $0.instanceId)) }
        // Busy instances first, then submissions: an instance whose last submission settles in
        // between keeps its events until the next pass.
        let busy = submissions.busyInstancePaths(settledSince: request.olderThan)
        let agentStreams = streams.removeIdleEvents(
            prefix: "agents/", idleBefore: request.olderThan, limit: request.batchLimit, isBusy: busy.contains)
        let removed = submissions.removeSettled(
            settledBefore: request.olderThan, keepAtMost: request.keepAtMost, limit: request.batchLimit)
        return RetentionReport(runs: runIds.count, submissions: removed, agentStreams: agentStreams)
    }
}
