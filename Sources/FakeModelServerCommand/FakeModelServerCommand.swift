import ArgumentParser
import FlueTestSupport

/// Runs the fake model server until interrupted: point `ANTHROPIC_BASE_URL` at
/// `http://127.0.0.1:PORT` or `OPENAI_BASE_URL` at `http://127.0.0.1:PORT/v1`.
@main
struct FakeModelServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fake-model-server",
        abstract: "A local model server speaking the Anthropic and OpenAI streaming wire protocols.")

    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "Port to bind (0 picks a free port).") var port = 8089

    func run() async throws {
        let server = try await FakeModelServer.start(host: host, port: port)
        print("fake-model-server listening on http://\(host):\(server.port)")
        print("  ANTHROPIC_BASE_URL=\(server.anthropicBaseURL)")
        print("  OPENAI_BASE_URL=\(server.openAIBaseURL)")
        try await server.waitUntilStopped()
    }
}
