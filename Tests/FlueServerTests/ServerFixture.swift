import AsyncHTTPClient
import FluePersistence
import FlueProviders
import FlueRuntime
@testable import FlueEngine
import FlueServer
import FlueTestSupport
import Foundation
import HTTPTypes
import Logging
import Hummingbird
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import Testing

struct TranslateInput: Codable, Sendable {
    var text: String
    var language: String
}

struct Translation: Codable, Sendable {
    enum Confidence: String, Codable, CaseIterable, Sendable { case low, medium, high }
    var translation: String
    var confidence: Confidence
}

struct Empty: Codable, Sendable {}

struct LogInput: Codable, Sendable { var count: Int }
struct SleepInput: Codable, Sendable { var ms: Int }

/// A one-shot gate a workflow waits on until the test opens it.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let resume = state.withLock { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if resume { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

struct TestFailure: Error {}

struct ToolArguments: Codable, Sendable {
    var label: String
    var sleepMs: Int?
}

/// What the fixture's agent tools saw: invocation labels and the most that ran at once.
final class ToolLedger: Sendable {
    private let state = Mutex<(calls: [String], running: Int, maxRunning: Int)>(([], 0, 0))

    func begin(_ label: String) {
        state.withLock { state in
            state.calls.append(label)
            state.running += 1
            state.maxRunning = max(state.maxRunning, state.running)
        }
    }

    func end() { state.withLock { $0.running -= 1 } }
    var calls: [String] { state.withLock { $0.calls } }
    var maxRunning: Int { state.withLock { $0.maxRunning } }
}

/// A Flue server on a real socket (127.0.0.1, free port) with test workflows, a fake model
/// server behind it and an HTTP client.
final class ServerFixture: Sendable {
    let model: FakeModelServer
    let server: FlueServer
    var engine: Engine { server.engine }
    let port: Int
    let gate: Gate
    let prefix: String
    private let serverTask: Task<Void, any Error>

    var baseURL: String { "http://127.0.0.1:\(port)\(prefix)" }

    static func start(
        prefix: String = "", stores: FlueStores = .inMemory(), model existingModel: FakeModelServer? = nil,
        ledger: ToolLedger = ToolLedger(), access: AccessPolicy? = nil, logger: Logger = Logger(label: "flue"),
        httpClient: HTTPClient = .shared, configure: (inout FlueConfiguration) -> Void = { _ in }
    ) async throws -> ServerFixture {
        let model: FakeModelServer
        if let existingModel { model = existingModel } else { model = try await FakeModelServer.start() }
        let registry = try ProviderRegistry(
            environment: [
                "ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": model.anthropicBaseURL,
                "MODEL_SPECIFIER": "anthropic/claude-fake",
            ], httpClient: httpClient, retry: RetryPolicy(maxRetries: 0))
        var configuration = FlueConfiguration(host: "127.0.0.1", port: 0)
        configuration.longPollTimeout = .milliseconds(400)
        configuration.sseHeartbeatInterval = .milliseconds(150)
        configuration.engine.shutdownGracePeriod = .seconds(5)
        configure(&configuration)
        let gate = Gate()
        let translator = try Agent(name: "translator", instructions: "Translate.")
        let workflows: [WorkflowRegistration] = [
            .http(
                try Workflow(name: "translate", payload: TranslateInput.self, result: Translation.self) { context in
                    let session = try await context.initialize(translator).session()
                    return try await session.prompt(
                        "Translate into \(context.payload.language): \(context.payload.text)", result: Translation.self)
                }),
            .http(
                try Workflow(name: "gated", payload: Empty.self, result: String.self) { context in
                    context.log.info("waiting at the gate")
                    await gate.wait()
                    context.log.info("through the gate")
                    return "opened"
                }),
            .http(
                try Workflow(name: "logs", payload: LogInput.self, result: Int.self) { context in
                    for index in 0..<context.payload.count { context.log.info("line \(index)") }
                    return context.payload.count
                }),
            .http(
                try Workflow(name: "sleeps", payload: SleepInput.self, result: String.self) { context in
                    context.log.info("sleeping")
                    try await Task.sleep(for: .milliseconds(context.payload.ms))
                    return "slept"
                }),
            .http(
                try Workflow(name: "fails", payload: Empty.self, result: String.self) { _ in
                    throw TestFailure()
                }),
            .http(
                try Workflow(name: "fails-typed", payload: Empty.self, result: String.self) { _ in
                    throw FlueError(.resultUnavailable, "the model gave up: no text")
                }),
            .http(
                try Workflow(name: "guarded", payload: Empty.self, result: String.self) { _ in "secret result" }),
            .internal(
                try Workflow(name: "nightly", payload: Empty.self, result: String.self) { _ in "internal result" }),
        ]
        let work = try FunctionTool(name: "work", description: "Does some work and reports it.") { (args: ToolArguments) in
            ledger.begin(args.label)
            defer { ledger.end() }
            if let sleepMs = args.sleepMs { try await Task.sleep(for: .milliseconds(sleepMs)) }
            return "worked: \(args.label)"
        }
        // Needs a human's approval unless its label is "free".
        let guardedWork = try FunctionTool(name: "guarded_work", description: "Work that needs approval.") {
            (args: ToolArguments) in
            ledger.begin(args.label)
            defer { ledger.end() }
            return "guarded work done: \(args.label)"
        }.requiringApproval { $0["label"]?.stringValue != "free" }
        let agents: [AgentRegistration] = [
            .http(try Agent(name: "assistant", instructions: "Help.", tools: [work, guardedWork])),
            .http(try Agent(name: "guarded-agent", instructions: "Secret.")),
            .internal(try Agent(name: "hidden", instructions: "Handle webhooks.", tools: [work])),
        ]
        let engine = try Engine(
            workflows: workflows, agents: agents, models: registry, stores: stores, configuration: configuration.engine,
            logger: logger)
        let server = FlueServer(engine: engine, configuration: configuration)
        let router = Router()
        router.add(middleware: RouteNotFoundMiddleware(prefix: prefix))
        router.get("/health") { _, _ in "ok" }
        if !prefix.isEmpty { router.get("\(prefix)/hello") { _, _ in "user route" } }
        let requireToken: RouteGuard<BasicRequestContext> = { request, _ in
            guard request.headers[HTTPField.Name("x-token")!] == "secret" else {
                if request.uri.path.contains("/runs/") {
                    let runId = String(request.uri.path.split(separator: "/").last ?? "")
                    return FlueHTTPError.runNotFound(runId).response()
                }
                return Response(status: .unauthorized)
            }
            return nil
        }
        // Instance "admin" is off limits whatever the token: the guard reads the (decoded) path parameter.
        let agentGuard: RouteGuard<BasicRequestContext> = { request, context in
            if context.parameters.get("id") == "admin" { return Response(status: .forbidden) }
            return try await requireToken(request, context)
        }
        FlueRoutes(server: server, guards: ["guarded": requireToken], agentGuards: ["guarded-agent": agentGuard], access: access)
            .register(on: router, prefix: prefix)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = server.application(router: router) { channel in
            continuation.yield(channel.localAddress?.port ?? 0)
            continuation.finish()
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: app), .init(service: engine)], gracefulShutdownSignals: [], logger: server.logger))
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw TestFailure() }
        return ServerFixture(
            model: model, server: server, port: port, gate: gate, ledger: ledger, prefix: prefix, group: group, serverTask: task)
    }

    private let group: ServiceGroup

    let ledger: ToolLedger

    private init(
        model: FakeModelServer, server: FlueServer, port: Int, gate: Gate, ledger: ToolLedger, prefix: String,
        group: ServiceGroup, serverTask: Task<Void, any Error>
    ) {
        self.ledger = ledger
        self.group = group
        self.model = model
        self.server = server
        self.port = port
        self.gate = gate
        self.prefix = prefix
        self.serverTask = serverTask
    }

    /// Graceful shutdown, as on SIGTERM: live reads end, running workflows finish (the gate is
    /// opened so gated runs can), then the HTTP server closes.
    func stop(keepModel: Bool = false) async {
        gate.open()
        await group.triggerGracefulShutdown()
        _ = try? await serverTask.value
        if !keepModel { await model.stop() }
    }

    /// Runs `body`, then stops the server as `stop()` does, also when `body` throws: the
    /// teardown is awaited, so no test leaves a server running behind the next one.
    func scoped(_ body: () async throws -> Void) async throws {
        try await withTeardown(body) { await stop() }
    }

    // MARK: HTTP helpers

    struct Reply: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: Data
        var json: JSONValue? { try? JSONValue(parsing: body) }
        var text: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? { headers.first(name: name) }
        var errorType: String? { json?["error"]?["type"]?.stringValue }
    }

    func request(
        _ method: HTTPMethod, _ path: String, body: String? = nil, contentType: String? = "application/json",
        headers extra: [(String, String)] = [], timeout: TimeAmount = .seconds(20)
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let body {
            request.body = .bytes(ByteBuffer(string: body))
            if let contentType { request.headers.add(name: "content-type", value: contentType) }
        }
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        let buffer = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: Data(buffer.readableBytesView))
    }

    func post(_ path: String, _ body: String? = "{}", headers: [(String, String)] = []) async throws -> Reply {
        try await request(.POST, path, body: body, headers: headers)
    }

    func get(_ path: String, headers: [(String, String)] = []) async throws -> Reply {
        try await request(.GET, path, headers: headers)
    }

    /// Starts a run and returns its id.
    func startRun(_ workflow: String, _ body: String = "{}", headers: [(String, String)] = []) async throws -> String {
        let reply = try await post("/workflows/\(workflow)", body, headers: headers)
        #expect(reply.status == 202, "\(reply.text)")
        return try #require(reply.json?["runId"]?.stringValue)
    }

    /// Catch-up reads until the run stream is closed; returns every event.
    func readToEnd(_ runId: String, headers: [(String, String)] = []) async throws -> [JSONValue] {
        var events: [JSONValue] = []
        var offset = "-1"
        for _ in 0..<200 {
            let reply = try await get("/runs/\(runId)?offset=\(offset)&live=long-poll", headers: headers)
            if reply.status == 200 { events += reply.json?.arrayValue ?? [] }
            offset = reply.header("Stream-Next-Offset") ?? offset
            if reply.header("Stream-Closed") == "true" { return events }
        }
        Issue.record("stream \(runId) never closed")
        return events
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension ServerFixture {
    /// Sends `head` byte for byte over a new TCP connection (for requests no HTTP client library
    /// sends, such as a malformed percent-escape or a raw method) and returns everything the
    /// server wrote until it closed the connection or `timeout` passed.
    func raw(_ head: String, timeout: Duration = .seconds(5)) async throws -> String {
        let port = self.port
        return try await Self.offPool {
            let (fd, _) = try Self.connectSocket(port: port, timeout: timeout)
            defer { close(fd) }
            let bytes = Array(head.utf8)
            guard send(fd, bytes, bytes.count, 0) == bytes.count else { throw TestFailure() }
            return String(decoding: Self.readUntilEnd(fd), as: UTF8.self)
        }
    }

    /// Runs blocking socket I/O on a thread of its own. A blocking read on Swift's cooperative pool
    /// (two threads on a two-core machine) would starve the server's request handlers, which run
    /// on that pool too; Dispatch's global queue is about as narrow, so blocking reads of parallel
    /// tests would hold up each other's sends.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    /// Everything `fd` (a socket or a file) yields until end of input, an error or a read timeout.
    static func readUntilEnd(_ fd: Int32) -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { return received }
            received += buffer[0..<count]
        }
    }

    /// Every event of the stream at `path` after `offset`, by catch-up reads until up to date.
    func catchUp(_ path: String, after offset: String = "-1") async throws -> [JSONValue] {
        var events: [JSONValue] = []
        var offset = offset
        while true {
            let page = try await get("\(path)?offset=\(offset)")
            events += page.json?.arrayValue ?? []
            offset = try #require(page.header("Stream-Next-Offset"))
            if page.header("Stream-Up-To-Date") == "true" { return events }
        }
    }

    /// A blocking TCP socket connected to 127.0.0.1:`port` (reads time out after `timeout`; a
    /// small `receiveBuffer` makes a reader that falls behind at once), and its local port.
    static func connectSocket(port: Int, receiveBuffer: Int32? = nil, timeout: Duration) throws -> (fd: Int32, localPort: Int) {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw TestFailure() }
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var seconds = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw TestFailure()
        }
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, Int(UInt16(bigEndian: local.sin_port)))
    }
}
