/// Why the engine refused or stopped waiting. Domain failures (an unknown agent, a bad instance
/// id, a dispatch-id conflict, a busy session) are `FlueError`s; these two are about the engine
/// itself. `FlueServer` answers them `503 service_unavailable` and `499` respectively.
public enum EngineError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Shutdown has begun: no new work is admitted and waits end. Accepted work is durable and
    /// continues in this or another process. The text says what happened to the request.
    case shuttingDown(String)
    /// The waiter's `abandon` signal finished (its client left) before the answer was ready; the
    /// work goes on.
    case waitAbandoned

    public var description: String {
        switch self {
        case .shuttingDown(let details): "shutting down: \(details)"
        case .waitAbandoned: "the waiter abandoned the wait"
        }
    }
}
