import AsyncHTTPClient
import FlueRuntime
import FlueTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// A test failed in a way no expectation describes (a child process that never became ready).
struct TestFailure: Error {}

/// Runs the real `hello-agents` executable as a child process.
final class ChildProcess {
    /// Captured output of the child.
    final class Output: Sendable {
        let text = Mutex<(stdout: String, stderr: String)>(("", ""))
    }

    private let process: Process
    private let output = Output()

    init(executable: String = "hello-agents", arguments: [String], environment: [String: String]) throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent(executable)
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw FlueError(.invalidDefinition, "\(executable) is not built at \(binary.path); run swift build first")
        }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        self.process = process
        let output = self.output
        out.fileHandleForReading.readabilityHandler = { handle in
            let text = String(decoding: handle.availableData, as: UTF8.self)
            output.text.withLock { $0.stdout += text }
        }
        err.fileHandleForReading.readabilityHandler = { handle in
            let text = String(decoding: handle.availableData, as: UTF8.self)
            output.text.withLock { $0.stderr += text }
        }
        try process.run()
    }

    var stdout: String { output.text.withLock { $0.stdout } }
    var stderr: String { output.text.withLock { $0.stderr } }
    var isRunning: Bool { process.isRunning }

    func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// `POST /workflows/translate` of "Hello" into French on a running example server; expects
    /// `202` and returns the receipt (`runId`, `streamUrl`, `offset`).
    static func admitTranslate(_ base: String) async throws -> JSONValue {
        var post = HTTPClientRequest(url: base + "/workflows/translate")
        post.method = .POST
        post.headers.add(name: "content-type", value: "application/json")
        post.body = .bytes(ByteBuffer(string: #"{"text":"Hello","language":"French"}"#))
        let response = try await HTTPClient.shared.execute(post, timeout: .seconds(10))
        #expect(response.status == .accepted)
        return try JSONValue(parsing: Data(try await response.body.collect(upTo: 4096).readableBytesView))
    }

    /// Waits for exit (killing the process after `timeout`) and returns the exit status.
    func waitForExit(timeout: Duration = .seconds(15)) async -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            return -1
        }
        process.waitUntilExit()
        try? await Task.sleep(for: .milliseconds(50))  // let the pipes drain
        return process.terminationStatus
    }

    /// The port from Hummingbird's "listening on HOST:PORT" log line.
    func listeningPort(timeout: Duration = .seconds(15)) async -> Int? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let log = stderr + stdout
            if let match = log.firstMatch(of: /listening on [0-9.]+:(\d+)/) { return Int(match.1) }
            if !process.isRunning { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }
}

@Suite(.serialized) struct ExampleProcessTests {
    static func environment(_ model: FakeModelServer, _ extra: [String: String] = [:]) -> [String: String] {
        var environment = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "HOST": "127.0.0.1", "PORT": "0",
            "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": model.anthropicBaseURL,
        ]
        environment.merge(extra, uniquingKeysWith: { $1 })
        return environment
    }

    @Test func servesHealthAndWorkflowsThenDrainsOnSIGTERMAndExitsZero() async throws {
        let model = try await FakeModelServer.start()
        try await model.scoped {
            let child = try ChildProcess(arguments: ["serve"], environment: Self.environment(model))
            let port = try #require(await child.listeningPort(), "no listening line in: \(child.stderr)")
            let base = "http://127.0.0.1:\(port)"

            let health = try await HTTPClient.shared.execute(HTTPClientRequest(url: base + "/health"), timeout: .seconds(5))
            #expect(health.status == .ok)
            #expect(String(buffer: try await health.body.collect(upTo: 1024)) == #"{"ok":true}"#)

            // A slow model turn keeps the run going while we shut down.
            await model.enqueue(
                ScriptedReply(
                    text: "one two three four five six", toolCalls: [ScriptedToolCall(name: "finish", arguments: ["translation": "Bonjour", "confidence": "high"])],
                    chunkDelayMs: 150))
            let receipt = try await ChildProcess.admitTranslate(base)
            let streamURL = try #require(receipt["streamUrl"]?.stringValue)

            let sse = try await HTTPClient.shared.execute(
                HTTPClientRequest(url: streamURL + "?offset=-1&live=sse"), timeout: .seconds(30))
            let collector = Task {
                var raw = ""
                for try await buffer in sse.body { raw += String(buffer: buffer) }
                return raw
            }
            try await Task.sleep(for: .milliseconds(300))
            child.signal(SIGTERM)

            let status = await child.waitForExit()
            #expect(status == 0, "stderr: \(child.stderr)")
            let raw = try await collector.value
            #expect(raw.contains("\"type\":\"run_start\""))
            #expect(raw.hasSuffix("\n\n"))
            #expect(raw.components(separatedBy: "event: control").count > 1)
            #expect(child.stderr.contains("shutting down"))
        }
    }

    @Test func apiTokensProtectEveryFlueRouteAndLeaveHealthPublic() async throws {
        let model = try await FakeModelServer.start()
        try await model.scoped {
            let token = "example-process-token-0123456789"
            let child = try ChildProcess(arguments: ["serve"], environment: Self.environment(model, ["API_TOKENS": "old-token-0123456789abc,\(token)", "HOST": "0.0.0.0"]))
            let port = try #require(await child.listeningPort(), "no listening line in: \(child.stderr)")
            let base = "http://127.0.0.1:\(port)"
            func status(_ path: String, _ method: HTTPMethod = .GET, token: String? = nil) async throws -> (Int, String?) {
                var request = HTTPClientRequest(url: base + path)
                request.method = method
                if method == .POST {
                    request.headers.add(name: "content-type", value: "application/json")
                    request.body = .bytes(ByteBuffer(string: #"{"message":"hi","text":"Hello","language":"French"}"#))
                }
                if let token { request.headers.add(name: "authorization", value: "Bearer \(token)") }
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                _ = try await response.body.collect(upTo: 1 << 20)
                return (Int(response.status.code), response.headers.first(name: "www-authenticate"))
            }
            #expect(try await status("/health").0 == 200)
            for (path, method) in [("/workflows/translate", HTTPMethod.POST), ("/agents/assistant/ada", .POST), ("/agents/assistant/ada?offset=-1", .GET), ("/openapi.json", .GET)] {
                let (code, challenge) = try await status(path, method)
                #expect(code == 401 && challenge == #"Bearer realm="flue""#, "\(method) \(path): \(code)")
            }
            #expect(try await status("/openapi.json", token: token).0 == 200)
            #expect(try await status("/openapi.json", token: "old-token-0123456789abc").0 == 200, "both tokens work while rotating")
            #expect(try await status("/openapi.json", token: "wrong-token-0123456789abc").0 == 401)
            #expect(!child.stderr.contains("without authentication"), "beyond loopback with tokens: no warning")
            child.signal(SIGTERM)
            #expect(await child.waitForExit() == 0)
        }
    }

    @Test func warnsWhenServingOpenRoutesBeyondLoopbackAndRefusesWeakTokens() async throws {
        let model = try await FakeModelServer.start()
        try await model.scoped {
            let open = try ChildProcess(arguments: ["serve"], environment: Self.environment(model, ["HOST": "0.0.0.0"]))
            _ = await open.listeningPort()
            #expect(open.stderr.contains("Flue routes are served without authentication beyond loopback"), "\(open.stderr)")
            open.signal(SIGTERM)
            #expect(await open.waitForExit() == 0)
            let weak = try ChildProcess(arguments: ["serve"], environment: Self.environment(model, ["API_TOKENS": "secret"]))
            #expect(await weak.waitForExit() != 0)
            #expect(weak.stderr.contains("API_TOKENS must be comma-separated tokens of at least 16 characters"), "\(weak.stderr)")
        }
    }

    @Test func logFormatJSONWritesOneObjectPerLine() async throws {
        let model = try await FakeModelServer.start()
        try await model.scoped {
            let child = try ChildProcess(arguments: ["serve"], environment: Self.environment(model, ["LOG_FORMAT": "json"]))
            _ = try #require(await child.listeningPort(), "no listening line in: \(child.stderr)")
            child.signal(SIGTERM)
            #expect(await child.waitForExit() == 0)
            let lines = child.stderr.split(separator: "\n").filter { $0.contains("\"label\":\"hello-agents\"") }
            #expect(!lines.isEmpty, "\(child.stderr)")
            for line in lines {
                let object = try JSONValue(parsing: String(line))
                #expect(object["message"]?.stringValue != nil && object["level"]?.stringValue != nil && object["timestamp"] != nil)
            }
            #expect(lines.contains { $0.contains("\"message\":\"persistence ready\"") && $0.contains("\"adapter\":\"memory\"") })
        }
    }

    @Test func refusesReservedVariablesAtStart() async throws {
        let model = try await FakeModelServer.start()
        try await model.scoped {
            let child = try ChildProcess(arguments: ["serve"], environment: Self.environment(model, ["FLUE_MODE": "local"]))
            let status = await child.waitForExit()
            #expect(status != 0)
            #expect(child.stderr.contains("FLUE_MODE is reserved for the Flue CLI"))
        }
    }

    @Test func runSubcommandPrintsEventsAndTheResult() async throws {
        let model = try await FakeModelServer.start()
        try await model.scoped {
            await model.enqueue(.finish(["translation": "Hola", "confidence": "high"]))
            let child = try ChildProcess(
                arguments: ["run", "translate", "--payload", #"{"text":"Hello","language":"Spanish"}"#],
                environment: Self.environment(model))
            let status = await child.waitForExit()
            #expect(status == 0, "stderr: \(child.stderr)")
            let result = try JSONValue(parsing: child.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(result == ["translation": "Hola", "confidence": "high"])
            let events = child.stderr.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
            #expect(events.first?["type"] == "run_start")
            #expect(events.last?["type"] == "run_end")

            let bad = try ChildProcess(
                arguments: ["run", "translate", "--payload", #"{"text":"Hello"}"#], environment: Self.environment(model))
            #expect(await bad.waitForExit() == 1)
            #expect(bad.stderr.contains("invalid payload"))
        }
    }

    @Test func reviewStagesTheDocumentAndReturnsTheFileTheAgentWrote() async throws {
        let model = try await FakeModelServer.start()
        try await model.scoped {
            // The fake model's automatic reply writes the file the prompt names in backticks.
            let child = try ChildProcess(
                arguments: ["run", "review", "--payload", ##"{"document":"# Plan\nShip on Friday."}"##],
                environment: Self.environment(model))
            let status = await child.waitForExit()
            #expect(status == 0, "stderr: \(child.stderr)")
            let result = try JSONValue(parsing: child.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            let review = try #require(result["review"]?.stringValue)
            #expect(review.hasPrefix("# review.md\n\nWritten by the fake model in answer to: Review `document.md`."))
            let events = child.stderr.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
            let tools = events.filter { $0["type"] == "tool" }.compactMap { $0["toolName"]?.stringValue }
            #expect(tools == ["write"])
            let first = try #require(await model.requests().first)
            #expect(first.toolNames.sorted() == ["edit", "grep", "read", "write"], "the reviewer gets the file tools only")
        }
    }
}
