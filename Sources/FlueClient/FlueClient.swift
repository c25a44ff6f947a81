import AsyncHTTPClient
import FlueRuntime
import Foundation
import NIOCore
import NIOHTTP1

/// A client for a deployed Flue server: start workflows and wait for their typed results, prompt
/// agents, control accepted work, and follow any run's or instance's events with resumable
/// Durable Streams reads.
///
/// ```swift
/// let flue = FlueClient(baseURL: "https://api.example.com", headers: ["authorization": "Bearer \(token)"])
/// let translation = try await flue.workflows.run("translate", payload: Input(text: "Hi", language: "French"),
///                                                as: Translation.self)
/// let receipt = try await flue.workflows.start("summarize", payload: ["text": "…"])
/// for try await event in flue.events(of: .run(receipt.runId)) { print(event.type) }   // ends at run_end
/// ```
///
/// Built on AsyncHTTPClient (Linux and Apple platforms); no server code. Every call throws
/// ``FlueClientError``: `.api` carries Flue's error envelope.
public struct FlueClient: Sendable {
    /// Where the server's Flue routes are: origin plus mount prefix (`https://api.example.com`,
    /// `http://127.0.0.1:3000/api`), without a trailing slash.
    public let baseURL: String
    /// Sent with every request.
    public let headers: [String: String]
    /// Called before every request and every stream reconnect, for headers that change (a
    /// refreshed bearer token); they override ``headers``.
    public let dynamicHeaders: (@Sendable () async throws -> [String: String])?
    /// How long a request that answers at once may take to its response head (not
    /// `?wait=result`, not a live read).
    public let timeout: Duration
    /// How long a request that waits for a result (`?wait=result`) may take to its answer; `nil`
    /// waits as long as the server does.
    public let waitTimeout: Duration?
    /// Requests that answer at once, and live reads: connect within 5 s, and no more than
    /// 60 s without a byte (SSE reads get a heartbeat every 15 s by default).
    let httpClient: HTTPClient
    /// `?wait=result` and long-polls: nothing may arrive until the answer, so no read timeout.
    let waitingHTTPClient: HTTPClient

    /// The clients used unless the caller passes its own: process-wide, like `HTTPClient.shared`.
    static let defaultHTTPClient = HTTPClient(
        eventLoopGroup: HTTPClient.defaultEventLoopGroup,
        configuration: HTTPClient.Configuration(timeout: .init(connect: .seconds(5), read: .seconds(60))))
    static let defaultWaitingHTTPClient = HTTPClient(
        eventLoopGroup: HTTPClient.defaultEventLoopGroup,
        configuration: HTTPClient.Configuration(timeout: .init(connect: .seconds(5), read: nil)))

    /// - Parameters:
    ///   - baseURL: origin, plus the mount prefix when Flue's routes are mounted beneath one.
    ///   - prefix: a mount prefix appended to `baseURL` (`/api`).
    ///   - headers: sent with every request (names are case-insensitive).
    ///   - dynamicHeaders: called before every request and every stream reconnect; overrides `headers`.
    ///   - httpClient: your own client for every request (its read timeout then applies to
    ///     waiting requests too); by default two process-wide ones (see ``timeout``, ``waitTimeout``).
    public init(
        baseURL: String, prefix: String = "", headers: [String: String] = [:],
        dynamicHeaders: (@Sendable () async throws -> [String: String])? = nil, timeout: Duration = .seconds(30),
        waitTimeout: Duration? = nil, httpClient: HTTPClient? = nil
    ) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        var mount = prefix.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if !mount.isEmpty { mount = "/" + mount }
        self.baseURL = base + mount
        self.headers = headers
        self.dynamicHeaders = dynamicHeaders
        self.timeout = timeout
        self.waitTimeout = waitTimeout
        self.httpClient = httpClient ?? Self.defaultHTTPClient
        self.waitingHTTPClient = httpClient ?? Self.defaultWaitingHTTPClient
    }

    public var workflows: Workflows { Workflows(client: self) }
    public var runs: Runs { Runs(client: self) }
    public var agents: Agents { Agents(client: self) }
    public var submissions: Submissions { Submissions(client: self) }
    public var approvals: Approvals { Approvals(client: self) }

    // MARK: requests

    func request(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: JSONValue? = nil,
        extraHeaders: [String: String] = [:]
    ) async throws -> HTTPClientRequest {
        var url = baseURL + path
        if !query.isEmpty {
            url += "?" + query.map { $0.1.isEmpty ? $0.0 : "\($0.0)=\(PathSegment.encoded($0.1))" }.joined(separator: "&")
        }
        var request = HTTPClientRequest(url: url)
        request.method = method
        // In order, names compared without case: static, then dynamic, then this call's.
        for (name, value) in headers { request.headers.replaceOrAdd(name: name, value: value) }
        if let dynamicHeaders {
            let provided: [String: String]
            do {
                provided = try await dynamicHeaders()
            } catch {
                throw FlueClientError.invalidArgument("the header provider failed: \(error)")
            }
            for (name, value) in provided { request.headers.replaceOrAdd(name: name, value: value) }
        }
        for (name, value) in extraHeaders { request.headers.replaceOrAdd(name: name, value: value) }
        if let body {
            request.headers.replaceOrAdd(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body.jsonData()))
        }
        return request
    }

    /// Sends `request` and returns status, headers and the whole body (at most `limit` bytes).
    /// `waits`: the answer may take long (no read timeout).
    func send(_ request: HTTPClientRequest, timeout: Duration?, waits: Bool = false, limit: Int = 64 << 20) async throws
        -> (status: Int, headers: HTTPHeaders, body: Data)
    {
        do {
            let client = waits ? waitingHTTPClient : httpClient
            let response = try await client.execute(request, deadline: Self.deadline(after: timeout))
            let buffer = try await response.body.collect(upTo: limit)
            return (Int(response.status.code), response.headers, Data(buffer.readableBytesView))
        } catch let error as FlueClientError {
            throw error
        } catch {
            throw Self.transportError(error, "\(request.method.rawValue) \(request.url)")
        }
    }

    /// A failure of the connection as `.transport` naming `what` failed, or `CancellationError`
    /// when the task was cancelled (AsyncHTTPClient reports that as its own error).
    static func transportError(_ error: any Error, _ what: String) -> any Error {
        if error is CancellationError || Task.isCancelled { return CancellationError() }
        return FlueClientError.transport("\(what): \(error)")
    }

    /// `now + timeout`, or no deadline for `nil` or a timeout beyond a day.
    static func deadline(after timeout: Duration?) -> NIODeadline {
        guard let timeout, timeout < .seconds(86_400) else { return .distantFuture }
        guard timeout > .milliseconds(1) else { return .now() + .milliseconds(1) }
        return .now() + .milliseconds(Int64(timeout.wholeMilliseconds))
    }

    /// Sends and decodes a 2xx answer as JSON; anything else becomes ``FlueClientError``.
    func json(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: JSONValue? = nil,
        extraHeaders: [String: String] = [:], waits: Bool = false
    ) async throws -> (status: Int, json: JSONValue) {
        let outgoing = try await request(method, path, query: query, body: body, extraHeaders: extraHeaders)
        let (status, headers, data) = try await send(outgoing, timeout: waits ? waitTimeout : timeout, waits: waits)
        guard (200..<300).contains(status) else { throw Self.apiError(status: status, headers: headers, body: data) }
        do {
            return (status, try JSONValue(parsing: data))
        } catch {
            throw FlueClientError.invalidResponse("\(method.rawValue) \(path) answered \(status) with a body that is not JSON")
        }
    }

    /// Decodes `value` as `T` (ISO-8601 dates), or throws `.invalidResponse` naming `what`.
    static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue, _ what: String) throws -> T {
        do {
            return try JSONDecoder.flue.decode(T.self, from: value.jsonData())
        } catch {
            throw FlueClientError.invalidResponse("\(what): \(error)")
        }
    }

    /// The error envelope of a non-2xx answer (or one made up from the status when there is none).
    static func apiError(status: Int, headers: HTTPHeaders, body: Data) -> FlueClientError {
        let retryAfter = headers.first(name: "retry-after").flatMap { Int($0) }
        if let json = try? JSONValue(parsing: body), let error = json["error"], let type = error["type"]?.stringValue {
            return .api(
                FlueAPIError(
                    status: status, type: type, message: error["message"]?.stringValue ?? "",
                    details: error["details"]?.stringValue ?? "", dev: error["dev"]?.stringValue, meta: error["meta"],
                    retryAfter: retryAfter, fromEnvelope: true))
        }
        return .api(
            FlueAPIError(
                status: status, type: "http_\(status)", message: HTTPResponseStatus(statusCode: status).reasonPhrase,
                retryAfter: retryAfter, fromEnvelope: false))
    }
}
