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
    private let wake: AsyncStream<Void>.Continuation
    private let task: Task<Void, Never>

    init(client: PostgresClient, logger: Logger) {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let pending = self.pending
        self.wake = continuation
        self.task = Task {
            for await _ in stream {
                let paths = pending.take()
                guard !paths.isEmpty else { continue }
                do {
                    try await client.query(
                        "SELECT pg_notify('flue_streams', path) FROM unnest(\(paths)::text[]) AS path", logger: logger)
                } catch {
                    logger.warning("could not notify other processes", metadata: ["error": "\(String(reflecting: error))"])
                }
            }
        }
    }

    /// Queues a notification for `path`.
    func announce(_ path: String) {
        pending.insert(path)
        wake.yield()
    }

    /// Sends what is queued and stops.
    func finish() async {
        wake.finish()
        await task.value
    }
}
