import Foundation
import Synchronization

/// Shutdown state shared by the routes: live readers listen for it, admission checks it.
public final class ServerLifecycle: Sendable {
    private struct State {
        var shuttingDown = false
        var listeners: [UUID: AsyncStream<Void>.Continuation] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// True once shutdown began: new work is refused and live reads end.
    public var isShuttingDown: Bool { state.withLock { $0.shuttingDown } }

    /// A sequence that finishes when shutdown begins (at once if it already has).
    func shutdownSignal() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        let id = UUID()
        let alreadyDown = state.withLock { state -> Bool in
            if state.shuttingDown { return true }
            state.listeners[id] = continuation
            return false
        }
        if alreadyDown { continuation.finish() }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.listeners.removeValue(forKey: id) }
        }
        return stream
    }

    /// Starts shutdown: wakes every live reader.
    public func beginShutdown() {
        let listeners = state.withLock { state -> [AsyncStream<Void>.Continuation] in
            guard !state.shuttingDown else { return [] }
            state.shuttingDown = true
            defer { state.listeners = [:] }
            return Array(state.listeners.values)
        }
        for listener in listeners { listener.finish() }
    }
}
