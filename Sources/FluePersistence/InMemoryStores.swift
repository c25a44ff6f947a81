import FlueRuntime
import Foundation
import Synchronization

/// Event streams in process memory: the default store, lost when the process exits.
public final class InMemoryEventStreamStore: EventStreamStore {
    private struct Stream {
        /// The retained events: sequences `nextSequence - events.count ..< nextSequence` (retention
        /// may have removed the ones before).
        var events: [StoredEvent] = []
        var closed = false
        var createdAt = Date()
        var nextSequence: Int64 = 0
        var lastAppendAt = Date()

        var firstRetainedSequence: Int64 { nextSequence - Int64(events.count) }
    }

    private let state = Mutex<[String: Stream]>([:])
    private let notifier = StreamNotifier()

    public init() {}

    public func createStream(_ path: String) {
        state.withLock { streams in
            if streams[path] == nil { streams[path] = Stream() }
        }
    }

    @discardableResult
    public func append(_ path: String, _ data: Data) throws -> StreamOffset {
        try appendBatch(path, [data])
    }

    @discardableResult
    public func appendBatch(_ path: String, _ events: [Data]) throws -> StreamOffset {
        let offset = try state.withLock { streams -> StreamOffset in
            guard var stream = streams[path] else { throw EventStreamError.streamNotFound(path) }
            guard !stream.closed else { throw EventStreamError.streamClosed(path) }
            for data in events {
                stream.events.append(StoredEvent(offset: StreamOffset(sequence: stream.nextSequence), data: data))
                stream.nextSequence += 1
            }
            stream.lastAppendAt = Date()
            streams[path] = stream
            return StreamOffset(sequence: stream.nextSequence - 1)
        }
        notifier.signal(path)
        return offset
    }

    public func read(_ path: String, after offset: StreamOffset, limit: Int) -> StreamReadResult {
        state.withLock { streams in
            guard let stream = streams[path] else {
                return StreamReadResult(events: [], nextOffset: offset, upToDate: true, closed: false)
            }
            // Retained sequences are dense from `firstRetainedSequence`, so the first event after
            // `offset` is at index `offset.eventCount - firstRetainedSequence` (0 for an offset
            // before them); compared before converting, so no offset can overflow an index.
            // Nothing after `offset` (the tail, or retention removed the events up to the tail).
            guard offset.eventCount < stream.nextSequence, !stream.events.isEmpty else {
                return StreamReadResult(
                    events: [], nextOffset: max(offset, StreamOffset(sequence: stream.nextSequence - 1)), upToDate: true,
                    closed: stream.closed)
            }
            let first = Int(max(0, offset.eventCount - stream.firstRetainedSequence))
            let end = first + min(stream.events.count - first, StreamReadLimit.clamped(limit))
            let events = Array(stream.events[first..<end])
            return StreamReadResult(
                events: events, nextOffset: events.last?.offset ?? offset, upToDate: end == stream.events.count,
                closed: stream.closed)
        }
    }

    public func closeStream(_ path: String) {
        let existed = state.withLock { streams -> Bool in
            guard streams[path] != nil else { return false }
            streams[path]?.closed = true
            return true
        }
        if existed { notifier.signal(path) }
    }

    public func meta(_ path: String) -> StreamMeta? {
        state.withLock { streams in
            streams[path].map {
                StreamMeta(tail: StreamOffset(sequence: $0.nextSequence - 1), closed: $0.closed, createdAt: $0.createdAt)
            }
        }
    }

    public func announce(_ path: String) { notifier.signal(path) }

    public func subscribe(_ path: String) -> AsyncStream<Void> {
        notifier.subscribe(path)
    }

    /// Removes streams with their events (retention of ended runs).
    func removeStreams(_ paths: [String]) {
        state.withLock { streams in
            for path in paths { streams[path] = nil }
        }
    }

    /// Removes the events of at most `limit` streams under `prefix` that have events, whose last
    /// append was before `idleBefore` and that `isBusy` does not claim; keeps each stream's tail.
    /// Returns how many streams it emptied.
    func removeIdleEvents(prefix: String, idleBefore: Date, limit: Int, isBusy: (String) -> Bool) -> Int {
        state.withLock { streams in
            var emptied = 0
            for (path, stream) in streams where emptied < limit {
                guard path.hasPrefix(prefix), !stream.events.isEmpty, stream.lastAppendAt < idleBefore, !isBusy(path)
                else { continue }
                streams[path]?.events = []
                emptied += 1
            }
            return emptied
        }
    }
}

/// Run records in process memory.
public final class InMemoryRunStore: RunStore {
    private let runs = Mutex<[String: RunRecord]>([:])

    public init() {}

    public func createRun(_ record: RunRecord) -> Bool {
        runs.withLock { runs in
            guard runs[record.runId] == nil else { return false }
            runs[record.runId] = record
            return true
        }
    }

    @discardableResult
    public func endRun(_ runId: String, _ outcome: Outcome, endedAt: Date, durationMs: Int, usage: Usage?) -> Bool {
        runs.withLock { runs in
            guard var record = runs[runId], record.status == .active else { return false }
            record.status = RunStatus(ending: outcome)
            record.endedAt = endedAt
            record.durationMs = durationMs
            record.isError = outcome.isError
            record.result = outcome.result
            record.error = outcome.error
            record.usage = usage
            runs[runId] = record
            return true
        }
    }

    public func heartbeatRuns(owner: String, at: Date) {
        runs.withLock { runs in
            for (id, record) in runs where record.owner == owner && record.status == .active {
                runs[id]?.heartbeatAt = at
            }
        }
    }

    public func claimStaleRuns(staleBefore: Date, newOwner: String, now: Date, limit: Int) -> [RunRecord] {
        runs.withLock { runs in
            let stale = runs.values
                .filter { $0.status == .active && ($0.heartbeatAt ?? $0.startedAt) < staleBefore }
                .sorted { $0.startedAt < $1.startedAt }
                .prefix(limit)
            return stale.map { record in
                var claimed = record
                claimed.owner = newOwner
                claimed.heartbeatAt = now
                runs[record.runId] = claimed
                return claimed
            }
        }
    }

    public func getRun(_ runId: String) -> RunRecord? { runs.withLock { $0[runId] } }

    public func requestCancel(_ runId: String, at: Date) -> RunRecord? {
        runs.withLock { runs in
            guard var record = runs[runId] else { return nil }
            if record.status == .active, record.cancelRequestedAt == nil {
                record.cancelRequestedAt = at
                runs[runId] = record
            }
            return record
        }
    }

    /// Removes at most `limit` ended runs that ended before `endedBefore` or, with `keepAtMost`,
    /// beyond that many newest ended runs; returns their ids, oldest first.
    func removeEndedRuns(endedBefore: Date, keepAtMost: Int?, limit: Int) -> [String] {
        runs.withLock { runs in
            let ended = runs.values.filter { $0.status != .active }
                .sorted { ($0.endedAt ?? $0.startedAt, $0.runId) < ($1.endedAt ?? $1.startedAt, $1.runId) }
            let excess = keepAtMost.map { max(0, ended.count - $0) } ?? 0
            var removed: [String] = []
            for (index, record) in ended.enumerated() where removed.count < limit {
                guard index < excess || (record.endedAt ?? record.startedAt) < endedBefore else { break }
                runs[record.runId] = nil
                removed.append(record.runId)
            }
            return removed
        }
    }

    public func listRuns(status: RunStatus?, workflowName: String?, limit: Int, cursor: String?) -> RunPage {
        let after = cursor.flatMap(RunListCursor.init(token:))
        let limit = min(max(1, limit), 1000)
        let sorted = runs.withLock { Array($0.values) }
            .filter { status == nil || $0.status == status }
            .filter { workflowName == nil || $0.workflowName == workflowName }
            .sorted { ($0.startedAt, $0.runId) > ($1.startedAt, $1.runId) }
            .filter { record in
                guard let after else { return true }
                return (record.startedAt, record.runId) < (after.s, after.r)
            }
        let page = Array(sorted.prefix(limit))
        let next = sorted.count > limit ? page.last.map { RunListCursor(s: $0.startedAt, r: $0.runId).token } : nil
        return RunPage(runs: page.map(\.pointer), nextCursor: next)
    }
}
