import FlueRuntime
import Foundation
import Synchronization

/// Event streams in process memory: the default store, lost when the process exits.
public final class InMemoryEventStreamStore: EventStreamStore {
    private struct Stream {
        var events: [StoredEvent] = []
        var closed = false
        var createdAt = Date()
        var nextSequence: Int64 = 0
    }

    private struct State {
        var streams: [String: Stream] = [:]
        var subscribers: [String: [UUID: AsyncStream<Void>.Continuation]] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public func createStream(_ path: String) {
        state.withLock { state in
            if state.streams[path] == nil { state.streams[path] = Stream() }
        }
    }

    @discardableResult
    public func append(_ path: String, _ data: Data) throws -> StreamOffset {
        let (offset, waiters) = try state.withLock { state -> (StreamOffset, [AsyncStream<Void>.Continuation]) in
            guard var stream = state.streams[path] else { throw EventStreamError.streamNotFound(path) }
            guard !stream.closed else { throw EventStreamError.streamClosed(path) }
            let offset = StreamOffset(sequence: stream.nextSequence)
            stream.nextSequence += 1
            stream.events.append(StoredEvent(offset: offset, data: data))
            state.streams[path] = stream
            return (offset, Array((state.subscribers[path] ?? [:]).values))
        }
        for waiter in waiters { waiter.yield() }
        return offset
    }

    public func read(_ path: String, after offset: StreamOffset, limit: Int) -> StreamReadResult {
        state.withLock { state in
            guard let stream = state.streams[path] else {
                return StreamReadResult(events: [], nextOffset: offset, upToDate: true, closed: false)
            }
            // Sequences are dense from 0 here, so the first event after `offset` is at index offset+1.
            let first = Int(max(0, offset.sequence + 1))
            guard first < stream.events.count else {
                return StreamReadResult(events: [], nextOffset: offset, upToDate: true, closed: stream.closed)
            }
            let end = min(stream.events.count, first + max(1, limit))
            let events = Array(stream.events[first..<end])
            return StreamReadResult(
                events: events, nextOffset: events.last?.offset ?? offset, upToDate: end == stream.events.count,
                closed: stream.closed)
        }
    }

    public func closeStream(_ path: String) {
        let waiters = state.withLock { state -> [AsyncStream<Void>.Continuation] in
            guard state.streams[path] != nil else { return [] }
            state.streams[path]?.closed = true
            return Array((state.subscribers[path] ?? [:]).values)
        }
        for waiter in waiters { waiter.yield() }
    }

    public func meta(_ path: String) -> StreamMeta? {
        state.withLock { state in
            state.streams[path].map {
                StreamMeta(tail: StreamOffset(sequence: $0.nextSequence - 1), closed: $0.closed, createdAt: $0.createdAt)
            }
        }
    }

    public func subscribe(_ path: String) -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = UUID()
        state.withLock { $0.subscribers[path, default: [:]][id] = continuation }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { state in
                state.subscribers[path]?[id] = nil
                if state.subscribers[path]?.isEmpty == true { state.subscribers[path] = nil }
            }
        }
        return stream
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

    public func endRun(_ runId: String, _ outcome: RunOutcome) {
        runs.withLock { runs in
            guard var record = runs[runId], record.status == .active else { return }
            record.status = outcome.status
            record.endedAt = outcome.endedAt
            record.durationMs = outcome.durationMs
            record.isError = outcome.status == .errored
            record.result = outcome.status == .completed ? (outcome.result ?? .null) : nil
            record.error = outcome.error
            runs[runId] = record
        }
    }

    public func getRun(_ runId: String) -> RunRecord? { runs.withLock { $0[runId] } }

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
