/// Why a live reader wakes up.
package enum LiveWake: Sendable {
    /// The stream changed (append or close).
    case changed
    /// The heartbeat timer fired.
    case tick
    /// The server is shutting down.
    case shutdown
    /// The waiting client is gone (its connection closed; see `ClientConnection` in `FlueServer`).
    case clientGone
}

/// Runs `body` with one merged sequence of wake-ups: store changes, timer ticks, shutdown and the
/// client leaving (when its connection is tracked). The helper tasks end with the body.
package func withLiveWakes<R: Sendable>(
    changes: AsyncStream<Void>, shutdown: AsyncStream<Void>, clientGone: AsyncStream<Void>?, tick: Duration,
    _ body: (AsyncStream<LiveWake>) async throws -> R
) async throws -> R {
    let (wakes, continuation) = AsyncStream<LiveWake>.makeStream(bufferingPolicy: .bufferingNewest(16))
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            for await _ in changes { continuation.yield(.changed) }
        }
        group.addTask {
            for await _ in shutdown {}
            if !Task.isCancelled { continuation.yield(.shutdown) }
        }
        if let clientGone {
            group.addTask {
                for await _ in clientGone {}
                if !Task.isCancelled { continuation.yield(.clientGone) }
            }
        }
        group.addTask {
            while !Task.isCancelled {
                try? await Task.sleep(for: tick)
                if !Task.isCancelled { continuation.yield(.tick) }
            }
        }
        defer {
            group.cancelAll()
            continuation.finish()
        }
        return try await body(wakes)
    }
}
