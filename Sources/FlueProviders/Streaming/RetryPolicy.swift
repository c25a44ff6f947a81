import FlueRuntime

/// When and how often a model request is retried: on 429, 5xx and connection failures, and only
/// while no output has been streamed to the caller.
public struct RetryPolicy: Sendable, Hashable {
    /// Retries after the first attempt.
    public var maxRetries: Int
    /// Delay before the first retry; doubles each time, with 75–100 % jitter.
    public var baseDelay: Duration
    /// Upper bound for any single delay, including a server's `Retry-After`.
    public var maxDelay: Duration

    public init(maxRetries: Int = 3, baseDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(20)) {
        self.maxRetries = maxRetries
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// Three retries starting at one second.
    public static let `default` = RetryPolicy()

    /// The delay before retry number `retry` (1-based), honouring `retryAfterSeconds` when given.
    func delay(beforeRetry retry: Int, retryAfterSeconds: Double?) -> Duration {
        // `Retry-After` is a server's number: compared as a Double first, so a huge, infinite or
        // NaN value never reaches an integer conversion (which would trap).
        if let retryAfterSeconds, retryAfterSeconds >= 0 {
            let capSeconds = maxDelay.timeInterval
            guard retryAfterSeconds < capSeconds else { return maxDelay }
            return .milliseconds(Int64(retryAfterSeconds * 1000))
        }
        let exponential = baseDelay * (1 << min(retry - 1, 16))
        let jitter = Double.random(in: 0.75...1.0)
        return min(exponential * jitter, maxDelay)
    }
}
