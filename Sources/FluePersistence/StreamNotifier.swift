import Foundation
import Synchronization

/// Per-path wake-ups for live readers in this process. Stores signal it after an append or
/// close; the Postgres adapter also signals it when another process's notification arrives.
public final class StreamNotifier: Sendable {
    private let subscribers = Mutex<[String: [UUID: AsyncStream<Void>.Continuation]]>([:])

    public init() {}

    /// A sequence that yields after each change of `path`, coalesced while the reader is busy.
    public func subscribe(_ path: String) -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = UUID()
        subscribers.withLock { $0[path, default: [:]][id] = continuation }
        continuation.onTermination = { [weak self] _ in
            self?.subscribers.withLock { subscribers in
                subscribers[path]?[id] = nil
                if subscribers[path]?.isEmpty == true { subscribers[path] = nil }
            }
        }
        return stream
    }

    /// Wakes every reader of `path`.
    public func signal(_ path: String) {
        let waiters = subscribers.withLock { Array(($0[path] ?? [:]).values) }
        for waiter in waiters { waiter.yield() }
    }

    /// Wakes every reader of every path (after a lost connection, when changes may have been missed).
    public func signalAll() {
        let waiters = subscribers.withLock { $0.values.flatMap(\.values) }
        for waiter in waiters { waiter.yield() }
    }

    /// Ends every subscription (the store is closing).
    public func finishAll() {
        let waiters = subscribers.withLock { subscribers -> [AsyncStream<Void>.Continuation] in
            defer { subscribers = [:] }
            return subscribers.values.flatMap(\.values)
        }
        for waiter in waiters { waiter.finish() }
    }
}
