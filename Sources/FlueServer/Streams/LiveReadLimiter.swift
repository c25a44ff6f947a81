import Synchronization

/// Counts live reads (long-poll and SSE) in this process, in total and per stream, and refuses
/// one beyond `FlueConfiguration.maxLiveReads` / `maxLiveReadsPerStream` with a `503` envelope and
/// `Retry-After`. Catch-up reads are not counted: they answer at once.
public final class LiveReadLimiter: Sendable {
    private struct State {
        var total = 0
        var perStream: [String: Int] = [:]
    }

    private let state = Mutex(State())
    private let maxTotal: Int
    private let maxPerStream: Int
    private let retryAfter: Int

    public init(maxTotal: Int, maxPerStream: Int, retryAfterSeconds: Int) {
        self.maxTotal = maxTotal
        self.maxPerStream = maxPerStream
        self.retryAfter = retryAfterSeconds
    }

    /// Live reads in progress: over all streams, and of `path`.
    public func count(of path: String? = nil) -> Int {
        state.withLock { state in path.map { state.perStream[$0] ?? 0 } ?? state.total }
    }

    /// Takes a slot for a live read of `path`, or throws the `503` envelope (`meta.limit` is
    /// `live_reads` or `live_reads_per_stream`). The slot is given back by `LiveReadSlot.release()`
    /// or, at the latest, when the slot is deallocated.
    func acquire(_ path: String) throws -> LiveReadSlot {
        let refusal = state.withLock { state -> FlueHTTPError? in
            if state.total >= maxTotal {
                return .overloaded(
                    "This server is serving its maximum of \(maxTotal) live reads (MAX_LIVE_READS). "
                        + "Retry after the Retry-After delay, or read without live= meanwhile.",
                    limit: "live_reads", max: maxTotal, retryAfter: retryAfter)
            }
            let current = state.perStream[path] ?? 0
            if current >= maxPerStream {
                return .overloaded(
                    "This stream has its maximum of \(maxPerStream) live readers on this server (MAX_LIVE_READS_PER_STREAM). "
                        + "Retry after the Retry-After delay.",
                    limit: "live_reads_per_stream", max: maxPerStream, retryAfter: retryAfter)
            }
            state.total += 1
            state.perStream[path] = current + 1
            return nil
        }
        if let refusal { throw refusal }
        return LiveReadSlot(limiter: self, path: path)
    }

    fileprivate func release(_ path: String) {
        state.withLock { state in
            state.total -= 1
            let left = (state.perStream[path] ?? 1) - 1
            state.perStream[path] = left > 0 ? left : nil
        }
    }
}

/// One live read's place in a `LiveReadLimiter`, given back exactly once.
final class LiveReadSlot: Sendable {
    private let limiter: LiveReadLimiter
    private let path: String
    private let released = Atomic(false)

    fileprivate init(limiter: LiveReadLimiter, path: String) {
        self.limiter = limiter
        self.path = path
    }

    func release() {
        if !released.exchange(true, ordering: .acquiringAndReleasing) { limiter.release(path) }
    }

    deinit { release() }
}
