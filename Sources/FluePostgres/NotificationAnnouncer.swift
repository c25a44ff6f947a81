import Logging
import PostgresNIO
import Synchronization

/// Sends `NOTIFY flue_streams, '<path>'` for appended streams, after their commits, coalescing
/// bursts: while one `NOTIFY` round trip is in flight, further paths queue up and go out together
/// in the next one (`SELECT pg_notify(…) FROM unnest(…)`). Readers in other processes re-read
/// from their offsets on any wake-up, so one notification per path per burst is enough.
final class NotificationAnnouncer: Sendable {
    /// Paths waiting to be announced.
    private final class Pending: Sendable {
        private let paths = Mutex<Set<String>>([])
        func insert(_ path: String) { paths.withLock { _ = $0.insert(path) } }
        func take() -> [String] {
            paths.withLock { paths in
                defer { paths = [] }
                return Array(paths)
            }
        }
    }

    private let pending = Pending()
    private let wakes: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let client: PostgresClient
    private let logger: Logger

    init(client: PostgresClient, logger: Logger) {
        (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.client = client
        self.logger = logger
    }

    /// Sends queued notifications until ``finish()``, then what is still queued.
    func run() async {
        for await _ in wakes { await send() }
        await send()
    }

    private func send() async {
        let paths = pending.take()
        guard !paths.isEmpty else { return }
        do {
            try await client.query(
                "SELECT pg_notify('flue_streams', path) FROM unnest(\(paths)::text[]) AS path", logger: logger)
        } catch {
            logger.warning("could not notify other processes", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    /// Queues a notification for `path`.
    func announce(_ path: String) {
        pending.insert(path)
        wake.yield()
    }

    /// Ends ``run()`` once what is queued is sent.
    func finish() {
        wake.finish()
    }
}
