/// Whether shutdown has begun: set once by ``Engine/drain()``; admission checks it, live readers
/// and `?wait=result` waiters listen for it.
public final class ShutdownLatch: Sendable {
    private let latch = Latch()

    package init() {}

    /// True once shutdown began: new work is refused and live reads end.
    public var isSet: Bool { latch.isSet }

    /// A sequence that finishes when shutdown begins (at once if it already has).
    package func signal() -> AsyncStream<Void> { latch.signal() }

    /// Begins shutdown: wakes every listener. Later calls do nothing.
    package func begin() { latch.set() }
}
