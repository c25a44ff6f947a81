import FlueClient
import FlueRuntime
import FlueTestSupport
import Foundation
import Testing

/// The `flue` CLI (`logs`, `invoke`, `prompt`) against the real example server (issue 14).
@Suite(.serialized) struct CLIProcessTests {
    /// Runs `flue` with `arguments` to its end; returns exit status, stdout and stderr.
    static func flue(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> (status: Int32, stdout: String, stderr: String) {
        let child = try ChildProcess(
            executable: "flue", arguments: arguments,
            // No NO_COLOR: stdout is a pipe, and that alone must turn colour off.
            environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"])
        let status = await child.waitForExit(timeout: timeout)
        return (status, child.stdout, child.stderr)
    }

    /// The ndjson events with the fields that change from run to run replaced by their names.
    static func normalized(_ ndjson: String) throws -> String {
        let volatile: Set<String> = ["timestamp", "runId", "operationId", "turnId", "durationMs", "startedAt", "toolCallId"]
        func scrub(_ value: JSONValue) -> JSONValue {
            switch value {
            case .object(let object):
                return .object(
                    Dictionary(uniqueKeysWithValues: object.map { key, value in
                        (key, volatile.contains(key) ? .string("<\(key)>") : scrub(value))
                    }))
            case .array(let items): return .array(items.map(scrub))
            default: return value
            }
        }
        return try ndjson.split(separator: "\n").map { try scrub(JSONValue(parsing: String($0))).jsonString }.joined(separator: "\n") + "\n"
    }

    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Golden/logs-translate.ndjson")

    @Test func logsPrintsAKnownRunAsTheGoldenNDJSONAndReadably() async throws {
        let model = try await FakeModelServer.start()
        try await model.scoped {
            let server = try await ExampleServer.start(model)
            try await withTeardown {
                await model.enqueue(
                    ScriptedReply(
                        text: "Let me translate.\nBonjour",
                        toolCalls: [ScriptedToolCall(name: "finish", arguments: ["translation": "Bonjour", "confidence": "high"])]))
                let invoked = try await Self.flue([
                    "invoke", "translate", "--payload", #"{"text":"Hello","language":"French"}"#, "--url", server.base,
                ])
                #expect(invoked.status == 0, "\(invoked.stderr)")
                let runId = try #require(try JSONValue(parsing: invoked.stdout)["runId"]?.stringValue)
                _ = try await FlueClient(baseURL: server.base).events(of: .run(runId)).collect()

                let ndjson = try await Self.flue(["logs", runId, "--url", server.base, "--format", "ndjson"])
                #expect(ndjson.status == 0, "\(ndjson.stderr)")
                let actual = try Self.normalized(ndjson.stdout)
                if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
                    try FileManager.default.createDirectory(
                        at: Self.golden.deletingLastPathComponent(), withIntermediateDirectories: true)
                    try actual.write(to: Self.golden, atomically: true, encoding: .utf8)
                }
                let expected = try String(contentsOf: Self.golden, encoding: .utf8)
                #expect(actual == expected, "flue logs --format ndjson differs from \(Self.golden.path)")

                let pretty = try await Self.flue(["logs", runId, "--url", server.base])
                #expect(pretty.status == 0, "\(pretty.stderr)")
                let lines = pretty.stdout.split(separator: "\n").map(String.init)
                #expect(lines.first?.hasPrefix("run translate") == true, "\(lines)")
                #expect(lines.contains("Let me translate."), "text deltas are joined into lines: \(lines)")
                #expect(lines.contains { $0.hasPrefix("tool finish ok (") }, "one line per tool call with its duration: \(lines)")
                #expect(lines.contains { $0.hasPrefix("run completed (") })
                #expect(lines.contains(#"{"confidence":"high","translation":"Bonjour"}"#))
                #expect(lines.last?.hasPrefix("usage: 1 turn, input ") == true, "usage at the end: \(lines)")
                #expect(!pretty.stdout.contains("\u{1B}["), "no colour when stdout is not a terminal")

                let tail = try await Self.flue(["logs", runId, "--url", server.base, "--format", "ndjson", "--tail", "2"])
                #expect(try Self.normalized(tail.stdout) == expected.split(separator: "\n").suffix(2).joined(separator: "\n") + "\n")
            } teardown: {
                await server.stop()
            }
        }
    }

    @Test func followEndsAtRunEndAndAFailedRunExitsTwo() async throws {
        let model = try await FakeModelServer.start()
        try await model.scoped {
            let server = try await ExampleServer.start(model)
            try await withTeardown {
                await model.enqueue(slowTranslation)
                let receipt = try await FlueClient(baseURL: server.base).workflows.start(
                    "translate", payload: TranslateInput(text: "Hello", language: "French"))
                let followed = try await Self.flue(["logs", receipt.runId, "-f", "--url", server.base, "--format", "ndjson"])
                #expect(followed.status == 0, "\(followed.stderr)")
                let types = followed.stdout.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0))["type"]?.stringValue }
                #expect(types.first == "run_start" && types.last == "run_end", "\(types)")

                await model.enqueue(.httpError(400, message: "the model refused"))
                let failing = try await FlueClient(baseURL: server.base).workflows.start(
                    "translate", payload: TranslateInput(text: "Hello", language: "French"))
                let failed = try await Self.flue(["logs", failing.runId, "-f", "--url", server.base])
                #expect(failed.status == 2, "a run that errored exits 2: \(failed.stdout) \(failed.stderr)")
                #expect(failed.stdout.contains("run failed"))

                let unknown = try await Self.flue(["logs", "run_nope", "--url", server.base])
                #expect(unknown.status == 1 && unknown.stderr.contains("404 run_not_found"), "\(unknown.stderr)")
                let bad = try await Self.flue(["logs", "--agent", "no-slash", "--url", server.base])
                #expect(bad.status != 0 && bad.stderr.contains("--agent must be name/id"))

                // invoke --wait prints the result; prompt prints the answer, or follows it.
                await model.enqueue(.finish(["translation": "Hola", "confidence": "high"]))
                let waited = try await Self.flue([
                    "invoke", "translate", "--wait", "--payload", #"{"text":"Hello","language":"Spanish"}"#, "--url", server.base,
                ])
                #expect(waited.status == 0 && waited.stdout == #"{"confidence":"high","translation":"Hola"}"# + "\n", "\(waited)")
                let answered = try await Self.flue(["prompt", "assistant/ada", "Hi there", "--url", server.base])
                #expect(answered.status == 0 && answered.stdout == "Echo: Hi there\n", "\(answered)")
                let streamed = try await Self.flue(["prompt", "assistant/ada", "And again", "--follow", "--url", server.base])
                #expect(streamed.status == 0, "\(streamed.stderr)")
                #expect(streamed.stdout.contains("Echo: And again") && streamed.stdout.contains("submission completed"), "\(streamed.stdout)")
                #expect(!streamed.stdout.contains("Hi there"), "only this prompt's events")

                // Approvals from the terminal.
                let client = FlueClient(baseURL: server.base)
                let gated = try await client.agents.send("assistant", "dan", message: "Please `send_email` to bob")
                var listed = ""
                for _ in 0..<200 where !listed.contains("send_email") {
                    listed = try await Self.flue(["approvals", "assistant/dan", "--url", server.base]).stdout
                    if !listed.contains("send_email") { try await Task.sleep(for: .milliseconds(25)) }
                }
                let callId = try #require(listed.split(separator: " ").first.map(String.init), "\(listed)")
                let decided = try await Self.flue(["decide", "assistant/dan", callId, "approve", "--url", server.base])
                #expect(decided.status == 0 && decided.stdout == "approved: \(callId)\n", "\(decided)")
                let twice = try await Self.flue(["decide", "assistant/dan", callId, "deny", "--url", server.base])
                #expect(twice.status == 1 && twice.stderr.contains("409 already_decided"), "\(twice)")
                let settled = try await client.submissions.get(agent: "assistant", id: "dan", submissionId: gated.submissionId, waitForResult: true)
                #expect(settled.status == "completed")

                // Bad input is refused before any request: a header with a line break, a decision that is neither.
                let injected = try await Self.flue(["logs", "run_x", "--url", server.base, "--header", "X-A: a\r\nInjected: b"])
                #expect(injected.status == 64 && injected.stderr.contains("control character"), "\(injected)")
                #expect(try await Self.flue(["decide", "assistant/dan", callId, "maybe", "--url", server.base]).status == 64)
                // Nothing listening: reported at once, not after minutes of retries.
                let started = ContinuousClock.now
                let nobody = try await Self.flue(["logs", "run_x", "-f", "--url", "http://127.0.0.1:9"])
                #expect(nobody.status == 1 && ContinuousClock.now - started < .seconds(15), "\(nobody)")
            } teardown: {
                await server.stop()
            }
        }
    }
}
