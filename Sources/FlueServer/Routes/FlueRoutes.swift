import FlueEngine
import FluePersistence
import FlueRuntime
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// A per-definition route guard: return `nil` to let the request through, or a response to
/// answer it yourself (e.g. `401`, or the same `404` as an unknown run to hide existence).
public typealias RouteGuard<Context: RequestContext> = @Sendable (Request, Context) async throws -> Response?

/// Adds Flue's routes to a Hummingbird router, at the root or beneath a prefix, beside the
/// application's own routes and middleware.
///
/// ```swift
/// let router = Router()
/// router.get("/health") { _, _ in ["ok": true] }
/// FlueRoutes(server: server, guards: ["translate": requireToken]).register(on: router, prefix: "/api")
/// ```
public struct FlueRoutes<Context: RequestContext>: Sendable {
    public let server: FlueServer
    /// Guards by workflow name.
    public let guards: [String: RouteGuard<Context>]
    /// Guards by agent name: they run before admission and before stream reads of the agent.
    public let agentGuards: [String: RouteGuard<Context>]
    /// Authentication, ownership and per-principal limits for every route, checked before the
    /// guards (which can read ``Principal/current``); `nil` leaves the routes open.
    public let access: AccessPolicy?
    let limiter: PrincipalLimiter?

    public init(
        server: FlueServer, guards: [String: RouteGuard<Context>] = [:], agentGuards: [String: RouteGuard<Context>] = [:],
        access: AccessPolicy? = nil
    ) {
        self.server = server
        self.guards = guards
        self.agentGuards = agentGuards
        self.access = access
        self.limiter = access.map { PrincipalLimiter($0.limits) }
    }

    var engine: Engine { server.engine }

    static var otherMethods: [HTTPRequest.Method] { [.put, .delete, .patch, .options] }

    /// Registers `POST /workflows/:name`, `GET|HEAD /runs/:runId`, `POST|GET|HEAD /agents/:name/:id`
    /// and `GET /openapi.json`.
    public func register(on router: Router<Context>, prefix: String = "") {
        if let access {
            server.logger.info(
                "access control on",
                metadata: [
                    "prefix": "\(prefix.isEmpty ? "/" : prefix)", "authenticator": "\(type(of: access.authenticator))",
                    "ownership": "\(access.ownership.name)",
                    "requestsPerMinute": "\(access.limits.requestsPerMinute.map(String.init) ?? "unlimited")",
                    "concurrentSubmissions": "\(access.limits.concurrentSubmissions.map(String.init) ?? "unlimited")",
                ])
        } else {
            server.servesOpenRoutes.store(true, ordering: .relaxed)
        }
        let base = PathParameters.normalizedPrefix(prefix)
        let group = base == "/" ? router.group() : router.group(RouterPath(base))
        let routes = self
        if server.configuration.tracing {
            group.add(middleware: TracingMiddleware())
        }
        if let metrics = server.metrics {
            server.logger.info("metrics on", metadata: ["route": "GET \(base == "/" ? "" : base)/metrics"])
            group.add(middleware: HTTPMetricsMiddleware(metrics: metrics))
            // Behind the access policy's authentication like every Flue route (any principal).
            group.get("metrics") { request, _ in
                try await routes.handle(request) {
                    Response(
                        status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: await metrics.render(engine: routes.engine))))
                }
            }
        }

        group.post("workflows/:name") { request, context in
            try await routes.handle(request) { try await routes.invokeWorkflow(request, context) }
        }
        for method in [HTTPRequest.Method.get, .head] + Self.otherMethods {
            group.on("workflows/:name", method: method) { request, _ in
                try await routes.handle(request) {
                    throw FlueHTTPError.methodNotAllowed(request.method, allow: PathParameters.workflowMethods)
                }
            }
        }
        group.get("runs/:runId") { request, context in
            try await routes.handle(request) { try await routes.readRun(request, context) }
        }
        group.head("runs/:runId") { request, context in
            try await routes.handle(request) { try await routes.readRun(request, context) }
        }
        for method in [HTTPRequest.Method.post] + Self.otherMethods {
            group.on("runs/:runId", method: method) { request, _ in
                try await routes.handle(request) {
                    throw FlueHTTPError.methodNotAllowed(request.method, allow: PathParameters.runMethods)
                }
            }
        }
        registerAgentRoutes(on: group)
        registerControlRoutes(on: group)
        for method in PathParameters.documentMethods {
            group.on("openapi.json", method: method) { request, _ in
                try await routes.handle(request) {
                    guard try await routes.allows(.document) else {
                        throw FlueHTTPError.routeNotFound(request.method, request.uri.path)
                    }
                    let document = OpenAPIDocument.make(
                        engine: routes.engine, prefix: base == "/" ? "" : base, protected: routes.access != nil)
                    return Response(
                        status: .ok, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(data: document.jsonData())))
                }
            }
        }
    }

    /// Authenticates (with an ``AccessPolicy``) and runs `body` as the principal; renders every
    /// failure as the error envelope; unexpected errors never leak their message.
    func handle(_ request: Request, _ body: () async throws -> Response) async throws -> Response {
        var response: Response
        do {
            if let access {
                let principal = try await authenticate(request, access)
                response = try await Principal.$current.withValue(principal) { try await body() }
            } else {
                response = try await body()
            }
        } catch {
            var http = FlueHTTPError.from(error)
            if http.status == .internalServerError && http.type == "internal_error" {
                // The envelope never carries the underlying message; a reference ties the answer
                // the client got to the log line that has it.
                let reference = FlueHTTPError.newReference()
                http.reference = reference
                server.logger.error(
                    "internal error",
                    metadata: [
                        "errorRef": "\(reference)", "method": "\(request.method.rawValue)", "path": "\(request.uri.path)",
                        "error": "\(http.underlying ?? "\(error)")",
                    ])
            }
            http.developmentMode = server.configuration.developmentMode
            response = http.response()
        }
        if request.method == .head { response.body = ResponseBody() }
        return response
    }

    // MARK: workflows

    private func invokeWorkflow(_ request: Request, _ context: Context) async throws -> Response {
        let waitForResult = try Self.waitParameter(request)
        let context = try PathParameters.decoding(["name"], in: context)
        let name = context.parameters.get("name") ?? ""
        guard !name.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw FlueHTTPError.invalidRequest(
                "Workflow URLs must have the shape /workflows/<name> with a non-empty segment.")
        }
        guard let registration = engine.workflows[name], registration.exposed,
            try await allows(.workflow(name: name))
        else {
            var available: [String] = []
            for name in engine.exposedWorkflowNames where try await allows(.workflow(name: name)) { available.append(name) }
            throw FlueHTTPError.workflowNotFound(name, available: available)
        }
        if let guardResponse = try await guards[name]?(request, context) { return guardResponse }
        let body = try await JSONBody.read(request, limit: server.configuration.requestBodyLimit)
        let payload: ValidatedPayload
        do {
            payload = try registration.workflow.validatePayload(body)
        } catch let error as FlueError {
            throw FlueHTTPError(
                .badRequest, type: "invalid_request", message: FlueHTTPError.malformed,
                details: "The payload does not match workflow \(name): \(error.message)",
                meta: error.details["issues"].map { ["issues": $0] })
        }
        let idempotencyKey = try Self.idempotencyKey(request)
        let startedBy = Principal.current?.subject
        let replay = idempotencyKey.map { engine.idempotentRunId(name, idempotencyKey: $0, startedBy: startedBy) }
        let receipt = try await admittingWithinLimits(replaying: replay, id: \.runId) {
            try await engine.startRun(
                registration.workflow, payload: payload, idempotencyKey: idempotencyKey, startedBy: startedBy)
        }
        let streamURL = Self.streamURL(request, runId: receipt.runId, publicURL: server.configuration.publicURL)
        if waitForResult {
            // Stop waiting (the run goes on) if the client leaves.
            let outcome: Result<JSONValue, any Error>
            if let client = ClientConnection.current {
                outcome = try await client.value(of: receipt.completion)
            } else {
                outcome = await receipt.completion.value
            }
            switch outcome {
            case .success(let result):
                return Self.json(
                    .ok,
                    ["result": result, "runId": .string(receipt.runId), "streamUrl": .string(streamURL),
                     "offset": .string(receipt.offset)])
            case .failure(let error):
                throw error
            }
        }
        var response = Self.json(
            .accepted, ["runId": .string(receipt.runId), "streamUrl": .string(streamURL), "offset": .string(receipt.offset)])
        response.headers[.location] = streamURL
        response.headers[.streamNextOffset] = receipt.offset
        return response
    }

    /// The `Idempotency-Key` header: absent, or one value of 1–255 visible ASCII characters.
    static func idempotencyKey(_ request: Request) throws -> String? {
        let values = request.headers[values: .idempotencyKey]
        guard !values.isEmpty else { return nil }
        guard values.count == 1, IdempotencyKey.isValid(values[0]) else {
            throw FlueHTTPError.invalidRequest(
                "Idempotency-Key must be one header of 1 to \(IdempotencyKey.maxLength) visible ASCII characters (no spaces).")
        }
        return values[0]
    }

    /// `wait` may only be `result`.
    static func waitParameter(_ request: Request) throws -> Bool {
        let values = request.uri.queryParameters.getAll("wait")
        guard !values.isEmpty else { return false }
        guard values.count == 1, values[0] == "result" else {
            throw FlueHTTPError.invalidRequest("Invalid query parameters: wait must be \"result\".")
        }
        return true
    }

    /// `<origin><prefix>/runs/<runId>` for a request to `<prefix>/workflows/<name>`: the origin is
    /// `publicURL` (`PUBLIC_URL`), or the request's scheme (`X-Forwarded-Proto: https`, else
    /// `http`) and host.
    static func streamURL(_ request: Request, runId: String, publicURL: String?) -> String {
        PathParameters.mountURL(request, routeSegments: 2, publicURL: publicURL) + "/runs/\(PathParameters.encoded(runId))"
    }

    static func json(_ status: HTTPResponse.Status, _ body: JSONValue) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(data: body.jsonData())))
    }

    // MARK: runs

    /// The decoded run id of a `/runs/:runId…` route once the run exists, its workflow is
    /// registered, the principal may touch it and its guard let the request through; else the
    /// guard's response.
    /// Throws `404 run_not_found` otherwise.
    func runAddress(_ request: Request, _ context: Context) async throws -> (runId: String, guardResponse: Response?) {
        let context = try PathParameters.decoding(["runId"], in: context)
        let runId = context.parameters.get("runId") ?? ""
        guard PathParameters.isValidRunId(runId), let pointer = try await engine.stores.runs.lookupRun(runId),
            engine.workflows[pointer.workflowName] != nil,
            try await allows(.run(workflow: pointer.workflowName, runId: runId, startedBy: pointer.startedBy))
        else { throw FlueHTTPError.runNotFound(runId) }
        return (runId, try await guards[pointer.workflowName]?(request, context))
    }

    private func readRun(_ request: Request, _ context: Context) async throws -> Response {
        let (runId, guardResponse) = try await runAddress(request, context)
        if let guardResponse { return guardResponse }
        let reader = StreamReader(
            store: engine.stores.streams, path: "runs/\(runId)", notFound: .runNotFound(runId),
            configuration: server.configuration, shutdown: engine.shutdown, liveReads: server.liveReads)
        if request.method == .head { return try await reader.head() }
        if !request.uri.queryParameters.getAll("meta").isEmpty {
            // The read parameters are validated as on any read (then have no effect), so a typo
            // never passes silently.
            _ = try StreamQuery(request.uri.queryParameters)
            guard let record = try await engine.stores.runs.getRun(runId) else { throw FlueHTTPError.runNotFound(runId) }
            return Self.json(.ok, try JSONValue(encoding: record))
        }
        return try await reader.get(request)
    }
}
