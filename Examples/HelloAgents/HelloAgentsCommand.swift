import ArgumentParser
import FlueAuth
import FlueOpenTelemetry
import FlueEngine
import FluePersistence
import FlueRuntime
import FluePersistenceSelection
import FlueServer
import FlueTestSupport
import Foundation
import Hummingbird
import Logging

/// `hello-agents [serve]`, `hello-agents run <workflow> --payload JSON`, `hello-agents routes`.
@main
struct HelloAgentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hello-agents",
        abstract: "The Flue for Swift example application.",
        subcommands: [Serve.self, RunWorkflow.self, Routes.self],
        defaultSubcommand: Serve.self)
}

/// Fails the command with a one-line message on stderr.
func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    return ExitCode.failure
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the HTTP API (PORT, HOST, MODEL_SPECIFIER, provider keys).")

    @Flag(help: "Add developer guidance (`dev`) to error envelopes. Never in production.")
    var dev = false

    @Flag(help: "Start a local fake model server in this process and use it (no API key needed; answers are canned).")
    var fakeModel = false

    func run() async throws {
        var environment = ProcessInfo.processInfo.environment
        var fake: FakeModelServer?
        if fakeModel {
            let server = try await FakeModelServer.start()
            environment.merge(server.providerEnvironment) { $1 }
            print("hello-agents: using the fake model server at \(server.anthropicBaseURL)")
            fflush(nil)  // every output stream: seen at once when stdout is a pipe or a file, not at exit
            fake = server
        }
        do {
            // OTEL_EXPORTER_OTLP_ENDPOINT sends traces to an OpenTelemetry collector (docs/observability.md).
            let tracing = try FlueOpenTelemetry.bootstrap(environment: environment, serviceName: "hello-agents")
            try await FlueServer.serve(
                environment: environment, developmentMode: dev, label: "hello-agents",
                persistence: try PersistenceSelection.fromEnvironment(environment),
                // API_TOKENS (or JWT_SECRET / JWT_JWKS_URL) protects every Flue route; /health stays public.
                access: try await AccessPolicy.fromEnvironment(environment),
                services: tracing.map { [$0] } ?? []
            ) { model in
                try HelloAgentsApp.workflows(model: model ?? HelloAgentsApp.fallbackModel)
            } agents: { model in
                try HelloAgentsApp.agents(model: model ?? HelloAgentsApp.fallbackModel)
            } routes: { router in
                HelloAgentsApp.addRoutes(to: router)
            }
        } catch let error as ConfigurationError {
            throw fail("hello-agents: \(error)")
        } catch let error as FlueOpenTelemetry.ConfigurationError {
            throw fail("hello-agents: \(error)")
        } catch let error as PersistenceError {
            throw fail("hello-agents: \(error)")
        } catch let error as FlueError {
            throw fail("hello-agents: \(error)")
        }
        await fake?.stop()
    }
}

struct RunWorkflow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a workflow in this process without a server: events go to stderr as JSON lines, the result to stdout.")

    @Argument(help: "The workflow name.") var workflow: String
    @Option(help: "The payload as JSON.") var payload: String = "{}"

    @Flag(help: "Start a local fake model server in this process and use it (no API key needed; answers are canned).")
    var fakeModel = false

    func run() async throws {
        var environment = ProcessInfo.processInfo.environment
        for key in environment.keys where key.hasPrefix("FLUE_") { environment[key] = nil }
        let known = try HelloAgentsApp.workflows(model: HelloAgentsApp.fallbackModel).map(\.workflow.name)
        guard known.contains(workflow) else {
            throw fail("hello-agents: no workflow named \(workflow); known: \(known.sorted().joined(separator: ", "))")
        }
        var fake: FakeModelServer?
        if fakeModel {
            // Errors only: stderr carries the run's events as JSON lines.
            var logger = Logger(label: "fake-model-server")
            logger.logLevel = .error
            let server = try await FakeModelServer.start(logger: logger)
            environment.merge(server.providerEnvironment) { $1 }
            fake = server
        }
        let engine: Engine
        do {
            engine = try HelloAgentsApp.makeEngine(environment: environment, quiet: true)
        } catch {
            throw fail("hello-agents: \(error)")
        }
        guard let definition = engine.workflow(named: workflow) else {
            throw fail("hello-agents: no workflow named \(workflow)")
        }
        let validated: ValidatedPayload
        do {
            validated = try definition.validatePayload(try JSONValue(parsing: payload))
        } catch let error as FlueError {
            throw fail("hello-agents: invalid payload: \(error.message)")
        } catch {
            throw fail("hello-agents: --payload is not valid JSON: \(error)")
        }
        let encoder = JSONEncoder.flue
        let receipt = try await engine.startRun(definition, payload: validated) { event in
            if let line = try? encoder.encode(event) {
                FileHandle.standardError.write(line + Data("\n".utf8))
            }
        }
        let outcome = await receipt.completion.value
        await fake?.stop()
        switch outcome {
        case .success(let result):
            print(result.jsonString)
        case .failure(let error):
            throw fail("hello-agents: run \(receipt.runId) failed: \(FlueError.describe(error).jsonString)")
        }
    }
}

struct Routes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the HTTP routes this application serves.")

    func run() async throws {
        var environment = ProcessInfo.processInfo.environment
        for key in environment.keys where key.hasPrefix("FLUE_") { environment[key] = nil }
        let engine = try HelloAgentsApp.makeEngine(environment: environment)
        print("GET  /health")
        for name in engine.exposedWorkflowNames { print("POST /workflows/\(name)") }
        for name in engine.exposedAgentNames {
            print("POST /agents/\(name)/:id        (prompt; body {message, images?})")
            print("GET  /agents/\(name)/:id        (Durable Streams read of the instance's events)")
            print("HEAD /agents/\(name)/:id")
            print("POST /agents/\(name)/:id/abort   (cancel the running submission and every queued one)")
            print("GET  /agents/\(name)/:id/submissions   (newest first; ?limit, ?cursor)")
            print("HEAD /agents/\(name)/:id/submissions")
            print("GET  /agents/\(name)/:id/submissions/:submissionId   (?wait=result)")
            print("HEAD /agents/\(name)/:id/submissions/:submissionId")
            print("POST /agents/\(name)/:id/submissions/:submissionId/cancel")
            print("GET  /agents/\(name)/:id/approvals   (tool calls waiting for a human)")
            print("HEAD /agents/\(name)/:id/approvals")
            print("POST /agents/\(name)/:id/approvals/:callId   (body {decision: approve|deny, reason?})")
        }
        print("GET  /runs/:runId            (Durable Streams read; ?meta for the run record)")
        print("HEAD /runs/:runId")
        print("POST /runs/:runId/cancel")
        print("GET  /openapi.json")
    }
}
