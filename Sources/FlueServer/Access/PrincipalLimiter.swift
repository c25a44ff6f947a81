import Synchronization

/// Keeps ``PrincipalLimits`` for one replica: a token bucket per subject for requests per
/// minute, and the agent submissions and workflow runs each subject has in flight.
///
/// Memory stays bounded by ``maxTrackedSubjects`` subjects (times the submission limit for the
/// ids held). Beyond it, buckets that refilled completely are dropped, then the least recently
/// used half; the in-flight ids of the least recently active half of the subjects with no
/// admission under way are forgotten (those subjects' limits then start again from zero, a
/// documented degradation under more principals than that). Settled work is let go when its
/// subject next reaches its limit: that is when its ids are looked up in the store.
final class PrincipalLimiter: Sendable {
    static let maxTrackedSubjects = 10_000

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private struct InFlight {
        var ids: Set<String> = []
        var reserved = 0
        var touched = ContinuousClock.now
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
            if state.buckets.count > Self.maxTrackedSubjects { Self.shrink(&state.buckets, capacity, perSecond, now) }
            var bucket = state.buckets[subject] ?? Bucket(tokens: capacity, updated: now)
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated).timeInterval * perSecond)
            bucket.updated = now
            defer { state.buckets[subject] = bucket }
            guard bucket.tokens >= 1 else { return (1 - bucket.tokens) / perSecond }
            bucket.tokens -= 1
            return nil
        }
        if let wait {
            let seconds = wait.isFinite ? max(1, Int(min(wait, 3600).rounded(.up))) : 60
            throw FlueHTTPError.rateLimited(
                "At most \(perMinute) requests per minute per principal (RATE_LIMIT_PER_MINUTE).",
                limit: "requests_per_minute", max: perMinute, retryAfter: seconds)
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
            "At most \(limit) agent submissions and workflow runs in progress per principal (MAX_CONCURRENT_SUBMISSIONS); "
                + "wait for one to finish or cancel one.",
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

    /// Subjects with a request bucket, and with work counted in flight.
    var trackedSubjects: (buckets: Int, inFlight: Int) {
        state.withLock { ($0.buckets.count, $0.inFlight.count) }
    }

    /// Submissions of `subject` counted against its limit.
    func inFlightCount(_ subject: String) -> Int {
        state.withLock { $0.inFlight[subject]?.count ?? 0 }
    }

    private func reserve(_ subject: String, _ limit: Int) -> Bool {
        state.withLock { state in
            if state.inFlight.count > Self.maxTrackedSubjects { Self.forgetIdle(&state.inFlight) }
            guard (state.inFlight[subject]?.count ?? 0) < limit else { return false }
            state.inFlight[subject, default: InFlight()].reserved += 1
            state.inFlight[subject]?.touched = .now
            return true
        }
    }

    /// Drops the buckets that refilled completely, then, if that was not enough, the least
    /// recently used half: the next shrink is at least `maxTrackedSubjects / 2` requests away.
    private static func shrink(_ buckets: inout [String: Bucket], _ capacity: Double, _ perSecond: Double, _ now: ContinuousClock.Instant) {
        buckets = buckets.filter { $0.value.tokens + (now - $0.value.updated).timeInterval * perSecond < capacity }
        guard buckets.count > maxTrackedSubjects / 2 else { return }
        let newest = buckets.sorted { $0.value.updated > $1.value.updated }.prefix(maxTrackedSubjects / 2)
        buckets = Dictionary(uniqueKeysWithValues: newest.map { ($0.key, $0.value) })
    }

    /// Forgets the least recently active half of the subjects with no admission under way.
    private static func forgetIdle(_ inFlight: inout [String: InFlight]) {
        let idle = inFlight.filter { $0.value.reserved == 0 }.sorted { $0.value.touched < $1.value.touched }
        for (subject, _) in idle.prefix(max(1, inFlight.count / 2)) { inFlight[subject] = nil }
    }
}

/// A place held by ``PrincipalLimiter/reserveSubmission(_:isSettled:)`` until the admission
/// commits or releases it.
struct SubmissionReservation: Sendable {
    let subject: String
}
