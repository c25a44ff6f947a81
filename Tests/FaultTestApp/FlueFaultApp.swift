import FlueRuntime
import FluePersistenceSelection
import FlueServer
import Foundation
import Hummingbird

/// A Flue server for the fault tests: agent `worker` with a `side_effect` tool that appends a
/// line to `$SIDE_EFFECT_LOG` (one line per real invocation, across processes) and then sleeps,
/// so a test can kill the process while a tool call is in flight and count how often it ran. Its
/// subagent `helper` has the same tool, for kills around a delegated task. `approved_side_effect`
/// does the same once a human approved the call.
@main
struct FlueFaultApp {
    struct SideEffectArguments: Codable, Sendable {
        var label: String
        var sleepMs: Int
    }

    static func main() async throws { try await serve() }

    nonisolated static func serve() async throws {
        let log = ProcessInfo.processInfo.environment["SIDE_EFFECT_LOG"] ?? "/dev/null"
        try await FlueServer.serve(label: "flue-fault-app", persistence: try PersistenceSelection.fromEnvironment()) { _ in
            []
        } agents: { model in
            let act: @Sendable (SideEffectArguments) async throws -> String = { args in
                try appendLine("\(args.label) pid=\(getpid())\n", to: log)
                try await Task.sleep(for: .milliseconds(args.sleepMs))
                return "done: \(args.label)"
            }
            let sideEffect = try FunctionTool(
                name: "side_effect", description: "Performs an external action exactly once (e.g. charges a card).", body: act)
            // The same action behind a human's approval.
            let approvedSideEffect = try FunctionTool(
                name: "approved_side_effect", description: "Performs an external action once a human approved it.", body: act
            ).requiringApproval()
            return [
                .http(
                    try Agent(
                        name: "worker", model: model, instructions: "Do what you are asked.",
                        tools: [sideEffect, approvedSideEffect],
                        subagents: [
                            try Agent(
                                name: "helper", description: "Runs one side effect for its parent.",
                                instructions: "Do what you are asked.", tools: [sideEffect])
                        ]))
            ]
        } routes: { router in
            router.get("/health") { _, _ in Response(status: .ok) }
        }
    }

    /// Appends with `O_APPEND`, so concurrent writers from several processes never interleave.
    static func appendLine(_ line: String, to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard descriptor >= 0 else { throw FlueError(.operationFailed, "cannot open \(path)") }
        defer { close(descriptor) }
        let bytes = Array(line.utf8)
        guard write(descriptor, bytes, bytes.count) == bytes.count else {
            throw FlueError(.operationFailed, "cannot write \(path)")
        }
    }
}
