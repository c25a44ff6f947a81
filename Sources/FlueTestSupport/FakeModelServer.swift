import FlueRuntime
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// A local model server speaking the real Anthropic Messages and OpenAI Chat Completions wire
/// protocols, streaming included. Tests, benchmarks and deployment checks point providers at it
/// (`ANTHROPIC_BASE_URL`, `OPENAI_BASE_URL`) and script what the "model" answers.
///
/// Routes: `POST /v1/messages`, `POST /v1/chat/completions`, and for out-of-process control
/// `POST /_fake/script` (a JSON array of ``ScriptedReply``), `GET /_fake/requests`,
/// `POST /_fake/reset`, `GET /health`.
public final class FakeModelServer: Sendable {
    /// The bound port on 127.0.0.1.
    public let port: Int
    /// Script, request log and counters.
    public let state: FakeModelState
    private let task: Task<Void, any Error>
    private let group: ServiceGroup

    /// Base URL for `ANTHROPIC_BASE_URL`.
    public var anthropicBaseURL: String { "http://127.0.0.1:\(port)" }
    /// Base URL for `OPENAI_BASE_URL` (includes `/v1`).
    public var openAIBaseURL: String { "http://127.0.0.1:\(port)/v1" }

    private init(port: Int, state: FakeModelState, task: Task<Void, any Error>, group: ServiceGroup) {
        self.port = port
        self.state = state
        self.task = task
        self.group = group
    }

    /// Starts the server on `host:port` (port 0 picks a free one) and returns once it listens.
    public static func start(
        host: String = "127.0.0.1", port: Int = 0, logger: Logger = Logger(label: "fake-model-server")
    ) async throws -> FakeModelServer {
        let state = FakeModelState()
        let (bound, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: makeRouter(state: state),
            configuration: .init(address: .hostname(host, port: port), serverName: "fake-model-server"),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: app)], gracefulShutdownSignals: [], logger: logger))
        let task = Task {
            defer { continuation.finish() }
            try await group.run()
        }
        var iterator = bound.makeAsyncIterator()
        guard let actualPort = await iterator.next(), actualPort > 0 else {
            task.cancel()
            _ = try await task.value
            throw FlueError(.invalidDefinition, "fake model server did not start on \(host):\(port)")
        }
        return FakeModelServer(port: actualPort, state: state, task: task, group: group)
    }

    /// Variables that point the `anthropic` provider at this server with a placeholder key and
    /// make it the default model: merge them into an app's environment for a key-less demo.
    public var providerEnvironment: [String: String] {
        ["ANTHROPIC_BASE_URL": anthropicBaseURL, "ANTHROPIC_API_KEY": "fake-key", "MODEL_SPECIFIER": "anthropic/fake-model"]
    }

    /// Queues scripted replies.
    public func enqueue(_ replies: ScriptedReply...) async { await state.enqueue(replies) }

    /// The requests received so far (the last ``FakeModelState/requestLogLimit``).
    public func requests() async -> [RecordedRequest] { await state.requests() }

    /// Runs `body`, then stops the server, also when `body` throws: the teardown is awaited,
    /// not left to a detached task.
    public func scoped(_ body: () async throws -> Void) async throws {
        try await withTeardown(body) { await stop() }
    }

    /// Stops the server gracefully (open streams are cut).
    public func stop() async {
        await group.triggerGracefulShutdown()
        let task = self.task
        let forced = Task {
            try await Task.sleep(for: .seconds(2))
            task.cancel()
        }
        _ = try? await task.value
        forced.cancel()
    }

    /// Runs until the surrounding task is cancelled (for the executable).
    public func waitUntilStopped() async throws {
        try await task.value
    }

    static func makeRouter(state: FakeModelState) -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/v1/messages") { request, context in
            try await respond(api: .anthropic, request: request, context: context, state: state)
        }
        router.post("/v1/chat/completions") { request, context in
            try await respond(api: .openAI, request: request, context: context, state: state)
        }
        router.post("/_fake/script") { request, context in
            let replies = try await request.decode(as: [ScriptedReply].self, context: context)
            await state.enqueue(replies)
            return Response(status: .noContent)
        }
        router.get("/_fake/requests") { _, _ in
            let data = try JSONEncoder.flue.encode(await state.requests())
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: data)))
        }
        router.post("/_fake/reset") { _, _ in
            await state.reset()
            return Response(status: .noContent)
        }
        router.get("/health") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"ok":true}"#)))
        }
        return router
    }

    enum API: String { case anthropic, openAI = "openai" }

    /// Thrown inside a response body to drop the connection mid-stream.
    struct ScriptedDisconnect: Error {}

    static func respond(
        api: API, request: Request, context: BasicRequestContext, state: FakeModelState
    ) async throws -> Response {
        let buffer = try await request.body.collect(upTo: 64 * 1024 * 1024)
        let body = (try? JSONValue(parsing: Data(buffer.readableBytesView))) ?? .null
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        await state.record(RecordedRequest(api: api.rawValue, path: request.uri.path, headers: headers, body: body))

        if api == .anthropic, headers["x-api-key"]?.isEmpty ?? true {
            return errorResponse(api: api, status: 401, type: "authentication_error", message: "x-api-key header is required", retryAfter: nil)
        }
        if api == .anthropic, headers["anthropic-version"] == nil {
            return errorResponse(api: api, status: 400, type: "invalid_request_error", message: "anthropic-version header is required", retryAfter: nil)
        }
        guard body["stream"] == true else {
            return errorResponse(api: api, status: 400, type: "invalid_request_error", message: "this fake server only streams; send stream: true", retryAfter: nil)
        }

        let reply = await state.nextReply(for: body)
        if let status = reply.status {
            return errorResponse(
                api: api, status: status, type: status == 429 ? "rate_limit_error" : "api_error",
                message: reply.errorMessage ?? "scripted error", retryAfter: reply.retryAfterText ?? reply.retryAfter.map(String.init))
        }
        if let raw = reply.rawStream {
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: ResponseBody { writer in
                    for chunk in raw {
                        try await writer.write(ByteBuffer(string: chunk))
                        if let delay = reply.chunkDelayMs { try await Task.sleep(for: .milliseconds(delay)) }
                    }
                    try await writer.finish(nil)
                    await state.streamCompleted()
                })
        }
        let model = body["model"]?.stringValue ?? "fake-model"
        let inputTokens = max(1, body.jsonString.count / 4)
        let id = FlueID.make("msg")
        let (prelude, content, ending): ([WireEvent], [WireEvent], [WireEvent])
        switch api {
        case .anthropic:
            let r = AnthropicRendering(reply, model: model, inputTokens: inputTokens, messageId: id)
            (prelude, content, ending) = (r.prelude, r.content, r.ending)
        case .openAI:
            let r = OpenAIRendering(reply, model: model, inputTokens: inputTokens, completionId: id)
            (prelude, content, ending) = (r.prelude, r.content, r.ending)
        }
        let delay = reply.chunkDelayMs.map { Duration.milliseconds($0) }
        let disconnect = reply.disconnect
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                do {
                    for event in prelude { try await writer.write(ByteBuffer(string: event.text)) }
                    if disconnect == .beforeOutput { throw ScriptedDisconnect() }
                    for event in content {
                        if let delay { try await Task.sleep(for: delay) }
                        try await writer.write(ByteBuffer(string: event.text))
                    }
                    if disconnect == .afterOutput {
                        // Give the written chunks time to reach the socket: closing the channel
                        // discards writes still queued in it.
                        try await Task.sleep(for: .milliseconds(150))
                        throw ScriptedDisconnect()
                    }
                    for event in ending { try await writer.write(ByteBuffer(string: event.text)) }
                    try await writer.finish(nil)
                    await state.streamCompleted()
                } catch let error as ScriptedDisconnect {
                    await state.streamDropped()
                    throw error
                } catch {
                    await state.streamAbandoned()
                    throw error
                }
            })
    }

    static func errorResponse(api: API, status: Int, type: String, message: String, retryAfter: String?) -> Response {
        let body: JSONValue =
            switch api {
            case .anthropic: ["type": "error", "error": ["type": .string(type), "message": .string(message)]]
            case .openAI: ["error": ["message": .string(message), "type": .string(type), "code": nil]]
            }
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = retryAfter }
        return Response(
            status: HTTPResponse.Status(code: status), headers: headers,
            body: .init(byteBuffer: ByteBuffer(data: body.jsonData())))
    }
}

/// Runs `body`, then `teardown`, also when `body` throws (then rethrows): an awaited `defer` for
/// async cleanup.
public func withTeardown(_ body: () async throws -> Void, teardown: () async -> Void) async throws {
    do {
        try await body()
    } catch {
        await teardown()
        throw error
    }
    await teardown()
}
