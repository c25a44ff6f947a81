import Foundation

/// One stored event: its JSON bytes and its offset.
public struct StoredEvent: Sendable, Hashable {
    public var offset: StreamOffset
    /// The event as compact JSON text (one object).
    public var data: Data

    public init(offset: StreamOffset, data: Data) {
        self.offset = offset
        self.data = data
    }
}

/// The outcome of one read.
public struct StreamReadResult: Sendable, Hashable {
    public var events: [StoredEvent]
    /// Offset of the last event returned; when nothing was returned, the later of the start
    /// offset and the tail (retention may have removed events before the tail).
    public var nextOffset: StreamOffset
    /// The read reached the tail.
    public var upToDate: Bool
    /// The stream is closed (only final when `upToDate`).
    public var closed: Bool

    public init(events: [StoredEvent], nextOffset: StreamOffset, upToDate: Bool, closed: Bool) {
        self.events = events
        self.nextOffset = nextOffset
        self.upToDate = upToDate
        self.closed = closed
    }
}

/// What a stream looks like without reading it.
public struct StreamMeta: Sendable, Hashable {
    /// The position after the last event (`StreamOffset.start` when empty; on the wire
    /// `0000000000000000_<number of events>`).
    public var tail: StreamOffset
    public var closed: Bool
    public var createdAt: Date

    public init(tail: StreamOffset, closed: Bool, createdAt: Date) {
        self.tail = tail
        self.closed = closed
        self.createdAt = createdAt
    }
}

/// Why an append failed.
public enum EventStreamError: Error, Sendable, Hashable, CustomStringConvertible {
    case streamNotFound(String)
    case streamClosed(String)

    public var description: String {
        switch self {
        case .streamNotFound(let path): "event stream \(path) does not exist"
        case .streamClosed(let path): "event stream \(path) is closed"
        }
    }
}

/// Append-only event streams addressed by path (`runs/<runId>`, `agents/<name>/<id>`).
///
/// Contract: `createStream` is idempotent; `append` returns strictly increasing offsets and
/// throws for a missing or closed stream; `read` returns events strictly after an offset and, for
/// a missing stream, an empty up-to-date result; `subscribe` yields after every append or close.
/// `appendBatch` behaves like consecutive appends that no other writer interleaves with.
public protocol EventStreamStore: Sendable {
    func createStream(_ path: String) async throws
    @discardableResult
    func append(_ path: String, _ data: Data) async throws -> StreamOffset
    /// Appends several events in order as one write (dense offsets, all or nothing); returns the
    /// offset of the last one. Throws like `append`.
    @discardableResult
    func appendBatch(_ path: String, _ events: [Data]) async throws -> StreamOffset
    /// Events strictly after `offset`, at most `limit` (brought into `1...StreamReadLimit.maximum`).
    /// Any offset is valid input: one before the start reads from the start, one past the tail
    /// returns no events.
    func read(_ path: String, after offset: StreamOffset, limit: Int) async throws -> StreamReadResult
    func closeStream(_ path: String) async throws
    func meta(_ path: String) async throws -> StreamMeta?
    /// A signal for every append or close on `path`, coalesced while the reader is busy.
    /// Subscribe before reading so no change is missed. The sequence ends when the store closes.
    func subscribe(_ path: String) -> AsyncStream<Void>
    /// Wakes the subscribers of `path` in every process sharing the store, without appending
    /// (the path need not be a stream): how a cancel reaches the process that owns the work.
    /// Best effort; whoever listens also re-checks on a timer.
    func announce(_ path: String)
}

/// Paths that carry wake-ups only (``EventStreamStore/announce(_:)``), never events.
public enum ControlPath {
    /// Announced after a submission or a run is asked to stop: owners re-check their work.
    public static let cancellations = "_control/cancellations"
}

/// Bounds on one read's batch size.
public enum StreamReadLimit {
    /// The most events one read returns, whatever the caller asks for.
    public static let maximum = 1000

    /// `limit` brought into `1...maximum`, so no adapter computes a probe (`limit + 1`) or an
    /// index range from an unbounded number.
    public static func clamped(_ limit: Int) -> Int { min(max(limit, 1), maximum) }
}

extension EventStreamStore {
    /// Reads with the default batch size of 100.
    public func read(_ path: String, after offset: StreamOffset) async throws -> StreamReadResult {
        try await read(path, after: offset, limit: 100)
    }
}
