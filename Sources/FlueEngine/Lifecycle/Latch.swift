import Foundation
import Synchronization

/// A one-way switch with listeners: once set it stays set, and every `signal()` sequence finishes
/// (at once for one asked for afterwards). Shutdown and a client leaving are both such switches.
package final class Latch: Sendable {
    private struct State {
        var isSet = false
        var listeners: [UUID: AsyncStream<Void>.Continuation] = [:]
    }

    private let state = Mutex(State())

    package init() {}

    package var isSet: Bool { state.withLock { $0.isSet } }

    /// A sequence that finishes when the latch is set (at once if it already is).
    package func signal() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        let id = UUID()
        let alreadySet = state.withLock { state -> Bool in
            if state.isSet { return true }
            state.listeners[id] = continuation
            return false
        }
        if alreadySet { continuation.finish() }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.listeners.removeValue(forKey: id) }
        }
        return stream
    }

    /// Sets the latch and wakes every listener; later calls do nothing.
    package func set() {
        let listeners = state.withLock { state -> [AsyncStream<Void>.Continuation] in
            guard !state.isSet else { return [] }
            state.isSet = true
            defer { state.listeners = [:] }
            return Array(state.listeners.values)
        }
        for listener in listeners { listener.finish() }
    }
}
