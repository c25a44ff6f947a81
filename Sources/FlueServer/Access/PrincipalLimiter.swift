import Synchronization

/// Keeps ``PrincipalLimits`` for one replica: a token bucket per subject for requests per
/// minute, and the agent submissions each subject has in flight.
///
/// Memory stays bounded: buckets that refilled completely are dropped once more than
/// ``maxTrackedSubjects`` subjects are tracked, and settled submissions are forgotten when their
/// subject next reaches its limit (that is when they are looked up in the store).
final class PrincipalLimiter: Sendable {
    static let maxTrackedSubjects = 10_000

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private struct InFlight {
        var ids: Set<String> = []
        var reserved = 0
        var count: Int { ids.count + reserved }
    }

    private struct State {
        var buckets: [String: Bucket] = [:]
        var inFlight: [String: InFlight] = [:]
    }

    let limits: PrincipalLimits
    private let state = Mutex(State())

    init(_ limits: PrincipalLimits) {
        self.limits = limits
    }

    /// Takes one request from the subject's bucket, or throws `429 rate_limited` with the whole
    /// seconds until the next token (at least 1) as `Retry-After`.
    func admitRequest(_ subject: String, now: ContinuousClock.Instant = .now) throws {
        guard let perMinute = limits.requestsPerMinute else { return }
        let capacity = Double(perMinute)
        let perSecond = capacity / 60
        let wait = state.withLock { state -> Double? in
            if state.buckets.count > Self.maxTrackedSubjects { Self.dropFull(&state.buckets, capacity, perSecond, now) }
            var bucket = state.buckets[subject] ?? Bucket(tokens: capacity, updated: now)
            bucket.tokens = min(capacity, bucket.tokens + Self.seconds(now - bucket.updated) * perSecond)
            bucket.updated = now
            defer { state.buckets[subject] = bucket }
            guard bucket.tokens >= 1 else { return (1 - bucket.tokens) / perSecond }
            bucket.tokens -= 1
            return nil
        }
        if let wait {
            throw FlueHTTPError.rateLimited(
                "At most \(perMinute) requests per minute per principal (RATE_LIMIT_PER_MINUTE).",
                limit: "requests_per_minute", max: perMinute, retryAfter: max(1, Int(wait.rounded(.up))))
        }
    }

    /// Holds a place for one more submission of `subject`, or throws `429 rate_limited` when it
    /// has ``PrincipalLimits/concurrentSubmissions`` unsettled. At the limit, the ids it holds are
    /// looked up with `isSettled` first and the settled ones let go.
    func reserveSubmission(
        _ subject: String, isSettled: (String) async throws -> Bool
    ) async throws -> SubmissionReservation? {
        guard let limit = limits.concurrentSubmissions else { return nil }
        if reserve(subject, limit) { return SubmissionReservation(subject: subject) }
        let held = state.withLock { $0.inFlight[subject]?.ids ?? [] }
        var settled: Set<String> = []
        for id in held where try await isSettled(id) { settled.insert(id) }
        state.withLock { state in
            state.inFlight[subject]?.ids.subtract(settled)
            if state.inFlight[subject]?.count == 0 { state.inFlight[subject] = nil }
        }
        if reserve(subject, limit) { return SubmissionReservation(subject: subject) }
        throw FlueHTTPError.rateLimited(
            "At most \(limit) unsettled submissions per principal (MAX_CONCURRENT_SUBMISSIONS); "
                + "wait for one to settle or cancel one.",
            limit: "concurrent_submissions", max: limit, retryAfter: 1)
    }

    /// The reservation became submission `id` (a replayed idempotent prompt may name one already held).
    func commit(_ reservation: SubmissionReservation, id: String) {
        state.withLock { state in
            state.inFlight[reservation.subject, default: InFlight()].reserved -= 1
            state.inFlight[reservation.subject, default: InFlight()].ids.insert(id)
        }
    }

    /// The admission failed: give the place back.
    func release(_ reservation: SubmissionReservation) {
        state.withLock { state in
            state.inFlight[reservation.subject, default: InFlight()].reserved -= 1
            if state.inFlight[reservation.subject]?.count == 0 { state.inFlight[reservation.subject] = nil }
        }
    }

    /// Submissions of `subject` counted against its limit.
    func inFlightCount(_ subject: String) -> Int {
        state.withLock { $0.inFlight[subject]?.count ?? 0 }
    }

    private func reserve(_ subject: String, _ limit: Int) -> Bool {
        state.withLock { state in
            guard (state.inFlight[subject]?.count ?? 0) < limit else { return false }
            state.inFlight[subject, default: InFlight()].reserved += 1
            return true
        }
    }

    private static func dropFull(_ buckets: inout [String: Bucket], _ capacity: Double, _ perSecond: Double, _ now: ContinuousClock.Instant) {
        buckets = buckets.filter { $0.value.tokens + seconds(now - $0.value.updated) * perSecond < capacity }
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// A place held by ``PrincipalLimiter/reserveSubmission(_:isSettled:)`` until the admission
/// commits or releases it.
struct SubmissionReservation: Sendable {
    let subject: String
}
