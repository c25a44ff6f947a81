import FlueEngine
import FluePersistence
import FlueRuntime
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Every framework error as it goes over HTTP: `{"error": {"type", "message", "details", "dev"?, "meta"?}}`
/// with a status, the security headers, and `Allow` for 405. Throw it from any Flue route; it
/// renders itself like Hummingbird's `HTTPError`.
public struct FlueHTTPError: Error, Sendable, HTTPResponseError, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var type: String
    public var message: String
    public var details: String
    /// Developer guidance, rendered only in development mode.
    public var dev: String?
    public var meta: JSONValue?
    /// For 405: the allowed methods.
    public var allow: [HTTPRequest.Method]
    /// Seconds sent as `Retry-After` (RFC 9110 §10.2.3), for `503` and `429`.
    public var retryAfter: Int?
    /// The `WWW-Authenticate` challenge sent with a `401` (RFC 9110 §11.6.1).
    public var challenge: String?
    /// For `500 internal_error`: the reference also logged with the underlying error, sent as
    /// `meta.errorRef` and the `flue-error-ref` header.
    public var reference: String?
    /// What went wrong underneath a `500 internal_error` (logged, never sent).
    var underlying: String?
    /// Set by `FlueRoutes` when rendering: whether `dev` may be shown.
    var developmentMode = false

    public init(
        _ status: HTTPResponse.Status, type: String, message: String, details: String = "", dev: String? = nil,
        meta: JSONValue? = nil, allow: [HTTPRequest.Method] = []
    ) {
        self.status = status
        self.type = type
        self.message = message
        self.details = details
        self.dev = dev
        self.meta = meta
        self.allow = allow
    }

    public var description: String { "\(status.code) \(type): \(message)" }

    /// The JSON body.
    public var envelope: JSONValue {
        var error: [String: JSONValue] = [
            "type": .string(type), "message": .string(message), "details": .string(details),
        ]
        if developmentMode, let dev, !dev.isEmpty { error["dev"] = .string(dev) }
        if let meta { error["meta"] = meta }
        if let reference {
            var object = meta?.objectValue ?? [:]
            object["errorRef"] = .string(reference)
            error["meta"] = .object(object)
        }
        return ["error": .object(error)]
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response()
    }

    /// Renders without a request (used where no request context is at hand).
    public func response() -> Response {
        var headers = HTTPFields.flueSecurity
        headers[.contentType] = "application/json"
        if !allow.isEmpty { headers[.allow] = allow.map(\.rawValue).joined(separator: ", ") }
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if let challenge { headers[.wwwAuthenticate] = challenge }
        if let reference { headers[.flueErrorRef] = reference }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(data: envelope.jsonData())))
    }
}

extension HTTPFields {
    /// `X-Content-Type-Options: nosniff` and `Cross-Origin-Resource-Policy: cross-origin`, sent on
    /// every error and every stream read.
    static var flueSecurity: HTTPFields {
        [.xContentTypeOptions: "nosniff", .crossOriginResourcePolicy: "cross-origin"]
    }
}

extension HTTPField.Name {
    static let xContentTypeOptions = HTTPField.Name("X-Content-Type-Options")!
    static let crossOriginResourcePolicy = HTTPField.Name("Cross-Origin-Resource-Policy")!
    static let streamNextOffset = HTTPField.Name("Stream-Next-Offset")!
    static let streamUpToDate = HTTPField.Name("Stream-Up-To-Date")!
    static let streamClosed = HTTPField.Name("Stream-Closed")!
    static let streamCursor = HTTPField.Name("Stream-Cursor")!
    static let retryAfter = HTTPField.Name("Retry-After")!
    /// `Idempotency-Key` (IETF draft-ietf-httpapi-idempotency-key-header).
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    static let xForwardedProto = HTTPField.Name("X-Forwarded-Proto")!
    static let flueErrorRef = HTTPField.Name("flue-error-ref")!
}

extension FlueHTTPError {
    public static let malformed = "Request is malformed."

    public static func invalidRequest(_ details: String) -> FlueHTTPError {
        FlueHTTPError(.badRequest, type: "invalid_request", message: malformed, details: details)
    }

    public static func methodNotAllowed(_ method: HTTPRequest.Method, allow: [HTTPRequest.Method]) -> FlueHTTPError {
        FlueHTTPError(
            .methodNotAllowed, type: "method_not_allowed",
            message: "HTTP method \(method.rawValue) is not allowed on this endpoint.",
            details: "This endpoint accepts " + allow.map { "\"\($0.rawValue)\"" }.joined(separator: ", ") + " only.",
            allow: allow)
    }

    public static func runNotFound(_ runId: String) -> FlueHTTPError {
        FlueHTTPError(
            .notFound, type: "run_not_found", message: "Run \"\(runId)\" was not found.",
            details: "Verify the run id is correct and its history is still available.")
    }

    public static func submissionNotFound(_ submissionId: String) -> FlueHTTPError {
        FlueHTTPError(
            .notFound, type: "submission_not_found", message: "Submission \"\(submissionId)\" was not found.",
            details: "This agent instance has no submission with that id.")
    }

    /// `409 already_settled`: cancelling work that had ended; `meta` is the submission or run as it ended.
    static func alreadySettled(_ what: String, outcome: JSONValue) -> FlueHTTPError {
        FlueHTTPError(
            .conflict, type: "already_settled", message: "\(what) had already ended; nothing was cancelled.",
            details: "meta holds its outcome.", meta: outcome)
    }

    public static func streamNotFound(_ path: String) -> FlueHTTPError {
        FlueHTTPError(
            .notFound, type: "stream_not_found", message: "Event stream \"\(path)\" was not found.",
            details: "The stream is created when the first prompt is admitted.")
    }

    public static func agentNotFound(_ name: String, available: [String]) -> FlueHTTPError {
        FlueHTTPError(
            .notFound, type: "agent_not_found", message: "Agent \"\(name)\" was not found.",
            details: "Check the agent name in the URL.",
            dev: "Agents exposed over HTTP: " + (available.isEmpty ? "(none)" : available.joined(separator: ", ")))
    }

    public static func workflowNotFound(_ name: String, available: [String]) -> FlueHTTPError {
        FlueHTTPError(
            .notFound, type: "workflow_not_found", message: "Workflow \"\(name)\" was not found.",
            details: "Check the workflow name in the URL.",
            dev: "Workflows exposed over HTTP: " + (available.isEmpty ? "(none)" : available.joined(separator: ", ")))
    }

    public static func routeNotFound(_ method: HTTPRequest.Method, _ path: String) -> FlueHTTPError {
        FlueHTTPError(
            .notFound, type: "route_not_found", message: "No route matches \(method.rawValue) \"\(path)\".",
            details: "Check the URL and method against GET /openapi.json.")
    }

    /// A short reference for a `500`: 8 lowercase hex digits, random.
    static func newReference() -> String {
        String(format: "%08x", UInt32.random(in: .min ... .max))
    }

    public static let internalError = FlueHTTPError(
        .internalServerError, type: "internal_error", message: "An internal error occurred.",
        details: "The server encountered an unexpected error while handling this request.")

    public static func serviceUnavailable(_ details: String) -> FlueHTTPError {
        FlueHTTPError(
            .serviceUnavailable, type: "service_unavailable", message: "The service is unavailable.",
            details: details)
    }

    /// The client closed its connection before the answer was ready (nginx's `499`): the request
    /// stops waiting; nobody receives this response, but access logs show it.
    static let clientClosedRequest = FlueHTTPError(
        .init(code: 499, reasonPhrase: "Client Closed Request"), type: "client_closed_request",
        message: "The client closed the connection before the response was ready.",
        details: "Accepted work continues; read its result from the stream.")

    /// `401 unauthorized`: no credentials (`challenge` alone), or refused ones (RFC 6750 §3:
    /// `error="invalid_token"` and the reason as `error_description`, which is also `details`).
    static func unauthorized(challenge: String, refusal: String?) -> FlueHTTPError {
        var error = FlueHTTPError(
            .unauthorized, type: "unauthorized",
            message: refusal == nil ? "This route requires credentials." : "The credentials were refused.",
            details: refusal ?? "Send Authorization: Bearer <token>.")
        if let refusal {
            let quoted = refusal.replacingOccurrences(of: "\\", with: "").replacingOccurrences(of: "\"", with: "'")
            error.challenge = "\(challenge), error=\"invalid_token\", error_description=\"\(quoted)\""
        } else {
            error.challenge = challenge
        }
        return error
    }

    /// `429 rate_limited` for a principal over one of its limits (`meta`: `{"limit", "max"}`), with `Retry-After`.
    static func rateLimited(_ details: String, limit: String, max: Int, retryAfter: Int) -> FlueHTTPError {
        limitReached(
            .tooManyRequests, type: "rate_limited", message: "Too many requests from this principal.", details,
            limit: limit, max: max, retryAfter: retryAfter)
    }

    /// `503` for an exceeded server limit (`meta`: `{"limit": <which>, "max": <its value>}`), with
    /// `Retry-After`.
    static func overloaded(_ details: String, limit: String, max: Int, retryAfter: Int) -> FlueHTTPError {
        limitReached(
            .serviceUnavailable, type: "service_unavailable", message: "The server is at capacity.", details,
            limit: limit, max: max, retryAfter: retryAfter)
    }

    private static func limitReached(
        _ status: HTTPResponse.Status, type: String, message: String, _ details: String, limit: String, max: Int,
        retryAfter: Int
    ) -> FlueHTTPError {
        var error = FlueHTTPError(
            status, type: type, message: message, details: details, meta: ["limit": .string(limit), "max": .int(max)])
        error.retryAfter = retryAfter
        return error
    }

    /// Engine refusals become `503` (shutting down) or `499` (the waiting client left); a store
    /// outage `503 store_unavailable`; a runtime error that escaped to HTTP keeps its own type with
    /// status 500 (e.g. under `?wait=result`), or 409 for conflicts; anything else becomes the
    /// fixed `internal_error`.
    public static func from(_ error: any Error) -> FlueHTTPError {
        if let http = error as? FlueHTTPError { return http }
        switch error as? EngineError {
        case .shuttingDown(let details): return serviceUnavailable(details)
        case .waitAbandoned: return clientClosedRequest
        case nil: break
        }
        if case PersistenceError.unavailable = error {
            return FlueHTTPError(
                .serviceUnavailable, type: "store_unavailable", message: "The state store is unavailable.",
                details: "The server cannot reach its database right now; retry shortly.")
        }
        if let flue = error as? FlueError {
            return runtimeFailure(type: flue.type, message: flue.message, details: flue.details)
        }
        return internalError
    }

    /// A runtime failure (a `FlueError`, or one stored as `{type, message, details}` by a settled
    /// submission): `409` for `conflict`, `session_busy` and `aborted` (cancelled work), else `500`, keeping its own type;
    /// `details` is the text of `details.reason.message`, `meta` the details object.
    static func runtimeFailure(type: String, message: String, details: [String: JSONValue]) -> FlueHTTPError {
        let kind = FlueError.Kind(rawValue: type)
        let status: HTTPResponse.Status =
            kind == .conflict || kind == .sessionBusy || kind == .aborted ? .conflict : .internalServerError
        return FlueHTTPError(
            status, type: type, message: message, details: details["reason"]?["message"]?.stringValue ?? "",
            meta: details.isEmpty ? nil : .object(details))
    }
}
