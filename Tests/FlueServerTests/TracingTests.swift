import AsyncHTTPClient
import FluePersistence
@testable import FlueEngine
import FlueOpenTelemetry
import FlueRuntime
import FlueServer
import FlueTestSupport
import Foundation
import InMemoryTracing
import Instrumentation
import NIOCore
import Testing
import Tracing

/// One in-memory tracer for the test process (swift-distributed-tracing bootstraps once); each
/// test finds its spans by the trace id it sent.
enum TestTracer {
    static let shared: InMemoryTracer = {
        let tracer = InMemoryTracer()
        InstrumentationSystem.bootstrap(tracer)
        return tracer
    }()

    /// Runs `body` as span `caller` of trace `trace`: the test's HTTP client (AsyncHTTPClient)
    /// opens a client span under it and propagates it to the server.
    static func asCaller<T>(of trace: String, _ body: () async throws -> T) async rethrows -> T {
        var context = ServiceContext.topLevel
        context.inMemorySpanContext = InMemorySpanContext(traceID: trace, spanID: "caller", parentSpanID: nil)
        return try await ServiceContext.$current.withValue(context) { try await body() }
    }

    /// Whether `span`'s parent is the caller, directly or through the caller's client span.
    static func isUnderCaller(_ span: FinishedInMemorySpan, in spans: [FinishedInMemorySpan]) -> Bool {
        span.parentSpanID == "caller"
            || spans.contains { $0.spanID == span.parentSpanID && $0.kind == .client && $0.parentSpanID == "caller" }
    }

    static func spans(of trace: String) -> [FinishedInMemorySpan] {
        shared.finishedSpans.filter { $0.traceID == trace }
    }
}

/// Spans of HTTP requests, workflow runs, submission attempts, model turns and tool calls, with
/// the GenAI attributes; the caller's trace continues and reaches the model request (issue 15, item 1).
@Suite struct TracingTests {
    /// Runs `body` on a fixture whose model requests go through a client made after the tracer
    /// was bootstrapped (AsyncHTTPClient takes the tracer when a client is created).
    /// The test's own requests use that client too: `HTTPClient.shared` may predate the tracer.
    static func withFixture(_ body: (ServerFixture, HTTPClient) async throws -> Void) async throws {
        _ = TestTracer.shared
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        try await withTeardown {
            let f = try await ServerFixture.start(httpClient: client) {
                $0.tracing = true
                $0.engine.recoveryScanInterval = .milliseconds(100)
            }
            try await f.scoped { try await body(f, client) }
        } teardown: {
            try? await client.shutdown()
        }
    }

    /// `POST path` with a JSON body through `client`; the status and the JSON answer.
    static func post(_ f: ServerFixture, _ client: HTTPClient, _ path: String, _ body: String) async throws
        -> (status: Int, json: JSONValue?)
    {
        var request = HTTPClientRequest(url: f.baseURL + path)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await client.execute(request, timeout: .seconds(20))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), try? JSONValue(parsing: Data(bytes.readableBytesView)))
    }

    static func attribute(_ span: FinishedInMemorySpan?, _ name: String) -> String? {
        guard let value = span?.attributes[name]?.toSpanAttribute() else { return nil }
        switch value {
        case .string(let text): return text
        case .int64(let number): return String(number)
        case .int32(let number): return String(number)
        case .bool(let flag): return String(flag)
        case .stringArray(let texts): return texts.joined(separator: ",")
        default: return "\(value)"
        }
    }

    @Test func aWorkflowRunIsATreeOfSpansInTheCallersTrace() async throws {
        try await Self.withFixture { f, client in
            let trace = "trace-\(UUID().uuidString)"
            await f.model.enqueue(
                ScriptedReply(
                    toolCalls: [ScriptedToolCall(name: "finish", arguments: ["translation": "salut", "confidence": "high"])],
                    usage: Usage(input: 120, output: 30)))
            let reply = try await TestTracer.asCaller(of: trace) {
                try await Self.post(f, client, "/workflows/translate?wait=result", #"{"text":"hi","language":"fr"}"#)
            }
            #expect(reply.status == 200, "\(reply.json?.jsonString ?? "")")
            let runId = try #require(reply.json?["runId"]?.stringValue)
            var spans: [FinishedInMemorySpan] = []
            for _ in 0..<100 where !spans.contains(where: { $0.kind == .server }) {
                try await Task.sleep(for: .milliseconds(20))
                spans = TestTracer.spans(of: trace)
            }
            let server = try #require(
                spans.first { $0.operationName == "/workflows/{name}" && $0.kind == .server },
                "\(TestTracer.shared.finishedSpans.suffix(20).map { "\($0.operationName) \($0.traceID)" })")
            #expect(TestTracer.isUnderCaller(server, in: spans), "the incoming context continues")
            let run = try #require(spans.first { $0.operationName == "workflow translate" })
            #expect(run.parentSpanID == server.spanID)
            #expect(Self.attribute(run, "flue.run.id") == runId)
            let chat = try #require(spans.first { $0.operationName == "chat claude-fake" })
            #expect(chat.parentSpanID == run.spanID && chat.kind == .client)
            #expect(Self.attribute(chat, "gen_ai.operation.name") == "chat")
            #expect(Self.attribute(chat, "gen_ai.provider.name") == "anthropic")
            #expect(Self.attribute(chat, "gen_ai.request.model") == "claude-fake")
            #expect(Self.attribute(chat, "gen_ai.usage.input_tokens") == "120")
            #expect(Self.attribute(chat, "gen_ai.usage.output_tokens") == "30")
            #expect(Self.attribute(chat, "gen_ai.response.finish_reasons") == "toolUse")
            let tool = try #require(spans.first { $0.operationName == "execute_tool finish" })
            #expect(tool.parentSpanID == run.spanID)
            #expect(Self.attribute(tool, "gen_ai.tool.name") == "finish")
            #expect(Self.attribute(tool, "gen_ai.tool.call.id")?.isEmpty == false)
            #expect(Self.attribute(tool, "gen_ai.tool.call.arguments") == nil, "contents are not recorded by default")
            // The model request carried the trace (AsyncHTTPClient injects the current context).
            let requests = await f.model.state.requests()
            #expect(requests.contains { $0.headers[InMemoryTracer.traceIDKey] == trace }, "the outgoing request carries the trace")
        }
    }

    @Test func aSubmissionAttemptContinuesTheAdmittingRequestsTrace() async throws {
        try await Self.withFixture { f, client in
            let trace = "trace-\(UUID().uuidString)"
            await f.model.enqueue(.text("hello"))
            let reply = try await TestTracer.asCaller(of: trace) {
                try await Self.post(f, client, "/agents/assistant/traced?wait=result", #"{"message":"hi"}"#)
            }
            #expect(reply.status == 200, "\(reply.json?.jsonString ?? "")")
            var spans: [FinishedInMemorySpan] = []
            for _ in 0..<100 where !spans.contains(where: { $0.operationName == "invoke_agent assistant" }) {
                try await Task.sleep(for: .milliseconds(20))
                spans = TestTracer.spans(of: trace)
            }
            let server = try #require(
                spans.first { $0.operationName == "/agents/{name}/{id}" && $0.kind == .server }, "\(spans.map(\.operationName))")
            let attempt = try #require(spans.first { $0.operationName == "invoke_agent assistant" })
            #expect(attempt.parentSpanID == server.spanID, "the attempt is a child of the admitting request")
            #expect(Self.attribute(attempt, "gen_ai.agent.name") == "assistant")
            #expect(Self.attribute(attempt, "gen_ai.conversation.id") == "traced")
            #expect(Self.attribute(attempt, "flue.submission.id") == reply.json?["submissionId"]?.stringValue)
            let chat = try #require(spans.first { $0.operationName == "chat claude-fake" })
            #expect(chat.parentSpanID == attempt.spanID)
        }
    }

    @Test func aRecoveredAttemptStartsATraceLinkedToTheAdmittingRequest() async throws {
        try await Self.withFixture { f, _ in
            let trace = "trace-\(UUID().uuidString)"
            let key = SessionKey(agent: "assistant", instanceId: "recovered")
            let id = FlueID.make("sub")
            // Admitted under the caller's trace and claimed by a process that died: its lease ran out.
            try await f.engine.stores.streams.createStream("agents/assistant/recovered")
            _ = try await f.engine.stores.submissions.admit(
                NewSubmission(
                    submissionId: id, key: key, kind: .direct, input: AgentInput.direct(message: "hi", images: [], budget: nil),
                    acceptedAt: Date(), traceContext: [InMemoryTracer.traceIDKey: trace, InMemoryTracer.spanIDKey: "admission"]))
            let now = Date()
            _ = try await f.engine.stores.submissions.claim(
                id, owner: "dead-process", attemptId: "att_dead", now: now, leaseUntil: now.addingTimeInterval(-1))
            var attempt: FinishedInMemorySpan?
            for _ in 0..<250 where attempt == nil {
                try await Task.sleep(for: .milliseconds(20))
                attempt = TestTracer.shared.finishedSpans.first {
                    $0.operationName == "invoke_agent assistant" && Self.attribute($0, "flue.submission.id") == id
                }
            }
            let span = try #require(attempt, "the recovered attempt ran")
            #expect(span.traceID != trace, "a new trace")
            let link = try #require(span.links.first?.context.inMemorySpanContext)
            #expect(link.traceID == trace && link.spanID == "admission", "linked to the admitting request")
            #expect(Self.attribute(span, "flue.submission.attempt").flatMap { Int($0) }.map { $0 > 1 } == true, "a later attempt")
        }
    }

    @Test func aRunEndedByAnotherProcessLinksToItsOriginalTrace() async throws {
        try await Self.withFixture { f, client in
            let trace = "trace-\(UUID().uuidString)"
            let runId = FlueID.make("run")
            let longAgo = Date().addingTimeInterval(-3600)
            _ = try await f.engine.stores.runs.createRun(
                RunRecord(
                    runId: runId, workflowName: "logs", startedAt: longAgo, payload: ["count": 1], owner: "dead-process",
                    heartbeatAt: longAgo, traceContext: [InMemoryTracer.traceIDKey: trace, InMemoryTracer.spanIDKey: "origin"]))
            try await f.engine.stores.streams.createStream("runs/\(runId)")
            #expect(await f.engine.recoverOrphanedRuns().contains(runId))
            let recovery = try #require(
                TestTracer.shared.finishedSpans.first { Self.attribute($0, "flue.run.id") == runId },
                "a span for the terminalized run")
            #expect(recovery.traceID != trace, "a new trace")
            let link = try #require(recovery.links.first?.context.inMemorySpanContext)
            #expect(link.traceID == trace && link.spanID == "origin", "linked to the run's own trace")
        }
    }
}


/// When trace export is on, and which settings stop the start (checked before swift-otel is
/// bootstrapped, so nothing global changes here).
@Suite struct OpenTelemetryConfigurationTests {
    @Test func exportIsOnWithAnEndpointAndNotWhenDisabled() throws {
        #expect(!FlueOpenTelemetry.isConfigured([:]))
        #expect(FlueOpenTelemetry.isConfigured(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"]))
        #expect(FlueOpenTelemetry.isConfigured(["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"]))
        #expect(!FlueOpenTelemetry.isConfigured(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"]))
        #expect(!FlueOpenTelemetry.isConfigured(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"]))
        #expect(!FlueOpenTelemetry.isConfigured(["OTEL_EXPORTER_OTLP_ENDPOINT": "  "]))
        #expect(try FlueOpenTelemetry.bootstrap(environment: [:], serviceName: "x") == nil, "off without an endpoint")
        #expect(try FlueConfiguration.fromEnvironment(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"]).tracing)
        #expect(try !FlueConfiguration.fromEnvironment([:]).tracing)
    }

    @Test(arguments: ["carrier-pigeon", "grpc", "http/json"])
    func anUnsupportedProtocolStopsTheStartNamingTheVariable(value: String) throws {
        guard !FlueOpenTelemetry.supportedProtocols.contains(value) else { return }
        let error = try #require(throws: FlueOpenTelemetry.ConfigurationError.self) {
            try FlueOpenTelemetry.bootstrap(
                environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": value],
                serviceName: "x")
        }
        #expect(error.variable == "OTEL_EXPORTER_OTLP_PROTOCOL" && error.message.contains(value))
        #expect(value != "grpc" || error.message.contains("OTLPGRPC"), "gRPC names the trait that enables it")
    }
}
