
/// Shutdown state shared by the routes: live readers listen for it, admission checks it.
public final class ServerLifecycle: Sendable {
    private let shutdown = Latch()

    public init() {}

    /// True once shutdown began: new work is refused and live reads end.
    public var isShuttingDown: Bool { shutdown.isSet }

    /// A sequence that finishes when shutdown begins (at once if it already has).
    func shutdownSignal() -> AsyncStream<Void> { shutdown.signal() }

    /// Starts shutdown: wakes every live reader.
    public func beginShutdown() { shutdown.set() }
}
