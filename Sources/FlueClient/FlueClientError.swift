import FlueRuntime

/// What a ``FlueClient`` call can throw.
public enum FlueClientError: Error, Sendable, CustomStringConvertible {
    /// The server answered with Flue's error envelope (or a bare status it did not explain).
    case api(FlueAPIError)
    /// The request did not get an answer: connection refused or reset, a timeout, DNS.
    case transport(String)
    /// The answer was not what the route promises (not JSON, a field missing).
    case invalidResponse(String)
    /// What the caller passed cannot be sent (a payload that does not encode as JSON).
    case invalidArgument(String)
    /// A stream could not be resumed within the reconnect budget; `offset` is where it stopped.
    case streamInterrupted(offset: String, underlying: String)

    public var description: String {
        switch self {
        case .api(let error): "\(error)"
        case .transport(let message): "transport error: \(message)"
        case .invalidResponse(let message): "invalid response: \(message)"
        case .invalidArgument(let message): "invalid argument: \(message)"
        case .streamInterrupted(let offset, let underlying): "stream interrupted at offset \(offset): \(underlying)"
        }
    }

    /// The API error, if the server sent one.
    public var apiError: FlueAPIError? {
        if case .api(let error) = self { error } else { nil }
    }
}

/// Flue's error envelope, `{"error": {type, message, details, dev?, meta?}}`, with the HTTP status
/// and, for `429` and `503`, `Retry-After` in seconds.
public struct FlueAPIError: Error, Sendable, Hashable, CustomStringConvertible {
    public var status: Int
    /// The stable error type (`run_not_found`, `unauthorized`, `rate_limited`, `operation_failed`…).
    public var type: String
    public var message: String
    public var details: String
    public var dev: String?
    public var meta: JSONValue?
    public var retryAfter: Int?
    /// Whether the server sent Flue's envelope (else `type` is `http_<status>`, made up from a
    /// bare status, e.g. a proxy's).
    public var fromEnvelope: Bool

    public init(
        status: Int, type: String, message: String, details: String = "", dev: String? = nil, meta: JSONValue? = nil,
        retryAfter: Int? = nil, fromEnvelope: Bool = true
    ) {
        self.fromEnvelope = fromEnvelope
        self.status = status
        self.type = type
        self.message = message
        self.details = details
        self.dev = dev
        self.meta = meta
        self.retryAfter = retryAfter
    }

    /// What kind of failure this is, for `switch`.
    public enum Kind: Sendable, Hashable {
        /// 400, 413, 415: fix the request.
        case invalidRequest
        /// 401: no or refused credentials.
        case unauthorized
        /// 404: unknown (or hidden) workflow, run, instance, submission, approval or route.
        case notFound
        /// 405
        case methodNotAllowed
        /// 409: a conflicting idempotent retry, or work already settled / decided.
        case conflict
        /// 429: over a per-principal limit; retry after ``FlueAPIError/retryAfter``.
        case rateLimited
        /// 503: shutting down, at capacity, the store down; retry after ``FlueAPIError/retryAfter``.
        case unavailable
        /// The workflow or submission failed or was aborted (its own `type`: status 500 under
        /// `?wait=result`, or `409 aborted`).
        case failed
        /// Anything else.
        case other
    }

    public var kind: Kind {
        if fromEnvelope && (type == "aborted" || (status == 500 && type != "internal_error")) { return .failed }
        return switch status {
        case 400, 413, 415: .invalidRequest
        case 401: .unauthorized
        case 404: .notFound
        case 405: .methodNotAllowed
        case 409: .conflict
        case 429: .rateLimited
        case 503: .unavailable
        default: .other
        }
    }

    public var description: String { "\(status) \(type): \(message)\(details.isEmpty ? "" : " (\(details))")" }
}
