import FlueLocalSandbox
import FlueProviders
import FlueRuntime
import FlueTestSupport
import Foundation
import Synchronization
import Testing

/// The built-in tools driven by a model over both wire protocols, in the virtual sandbox.
@Suite struct SandboxToolTests {
    @Test(arguments: WireAPI.allCases)
    func theModelWritesGrepsEditsAndRunsBash(api: WireAPI) async throws {
        let f = try await Fixture.start()
        let agent = try Agent(
            name: "writer", model: api.model, instructions: "Write reports.",
            sandbox: .virtual(files: ["notes.txt": "alpha\nTODO: beta\ngamma\n", "AGENTS.md": "Reports go in report.md."]))
        await f.enqueue(
            .toolCall("write", ["path": "report.md", "content": "# Report\nstatus: draft\n"]),
            .toolCall("grep", ["pattern": "TODO", "glob": "*.txt"]),
            .toolCall("edit", ["path": "report.md", "old_string": "status: draft", "new_string": "status: final"]),
            .toolCall("bash", ["command": "cat report.md | wc -l && ls"]),
            .toolCall("read", ["path": "report.md"]),
            .toolCall("edit", ["path": "report.md", "old_string": "missing text", "new_string": "x"]),
            .text("Done."))
        let harness = f.harness(agent)
        let response = try await harness.session().prompt("Write the report.")
        #expect(response.text == "Done.")

        #expect(try await harness.files.readText("report.md") == "# Report\nstatus: final\n")
        let requests = await f.requests()
        #expect(requests.count == 7)
        let first = try #require(requests.first)
        for name in ["read", "write", "edit", "grep", "glob", "bash"] {
            #expect(first.toolSchema(name) != nil, "\(name) is offered")
        }
        #expect(first.systemPrompt?.contains("Reports go in report.md.") == true, "AGENTS.md joins the system prompt")
        let results = try #require(requests.last).toolResults.map(\.content)
        #expect(results.count == 6)
        #expect(results[0] == "wrote 23 bytes to report.md")
        #expect(results[1] == "notes.txt:2:TODO: beta")
        #expect(results[2] == "edited report.md: 1 replacement")
        #expect(results[3] == "2\nAGENTS.md\nnotes.txt\nreport.md\n[exit code 0]")
        #expect(results[4] == "     1\t# Report\n     2\tstatus: final")
        #expect(results[5].contains("old_string was not found in report.md"), "a failed edit is an error the model reads")
        let toolEvents = f.log.all.compactMap { event -> String? in
            if case .tool(let end) = event.body { "\(end.toolName):\(end.isError)" } else { nil }
        }
        #expect(toolEvents == ["write:false", "grep:false", "edit:false", "bash:false", "read:false", "edit:true"])
    }

    @Test func theApplicationChoosesTheBuiltinsAndWithoutASandboxThereAreNone() async throws {
        let f = try await Fixture.start()
        await f.enqueue(.text("ok"), .text("ok"))
        let reader = try Agent(
            name: "reader", model: WireAPI.anthropic.model, sandbox: .virtual(), builtinTools: .only([.read, .grep]))
        _ = try await f.session(reader).prompt("look")
        let plain = try Agent(name: "plain", model: WireAPI.anthropic.model)
        _ = try await f.session(plain).prompt("look")
        let requests = await f.requests()
        let offered = requests.map { request in
            (request.body["tools"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }.sorted()
        }
        #expect(offered == [["grep", "read"], []])
        #expect(throws: FlueError.self) {
            try Agent(
                name: "clash", tools: [try FunctionTool(name: "bash", description: "mine") { (_: Empty) in "" }],
                sandbox: .virtual())
        }
    }

    @Test func applicationCodeUsesFilesAndShellWithoutTouchingTheConversation() async throws {
        let f = try await Fixture.start()
        let agent = try Agent(name: "stager", model: WireAPI.anthropic.model, sandbox: .virtual())
        let harness = f.harness(agent)
        try await harness.files.writeText("input/doc.txt", "staged\n")
        let result = try await harness.shell("cat input/doc.txt && echo done")
        #expect(result.stdout == "staged\ndone\n" && result.exitCode == 0)
        #expect(f.log.types == ["tool_start", "tool"])
        #expect(try await harness.session().messages.isEmpty)
        // Another harness of the same instance sees the same files; another instance does not.
        let again = Harness(agent: agent, instanceId: "instance-1", models: f.registry)
        #expect(try await again.files.readText("input/doc.txt") == "staged\n")
        let other = Harness(agent: agent, instanceId: "instance-2", models: f.registry)
        #expect(try await other.files.exists("input/doc.txt") == false)
    }

    @Test func toolCallsOfOneTurnRunConcurrentlyUpToTheAgentsBound() async throws {
        let f = try await Fixture.start()
        let gauge = Gauge()
        let slow = try FunctionTool(name: "slow", description: "Takes a while.") { (_: Empty) in
            gauge.enter()
            try await Task.sleep(for: .milliseconds(150))
            gauge.leave()
            return "done"
        }
        let agent = try Agent(name: "busy", model: WireAPI.openai.model, tools: [slow], maxParallelToolCalls: 2)
        await f.enqueue(
            .toolCalls((1...5).map { ScriptedToolCall(id: "c\($0)", name: "slow", arguments: [:]) }), .text("all done"))
        let response = try await f.session(agent).prompt("go")
        #expect(response.text == "all done")
        #expect(gauge.peak == 2, "five calls, at most two at once")
        let results = try #require(await f.requests().last).toolResults
        #expect(results.map(\.id) == ["c1", "c2", "c3", "c4", "c5"], "results in call order")
    }
}

/// The same tools over the `local` sandbox: a real directory and a real shell.
extension SandboxToolTests {
    @Test(arguments: WireAPI.allCases)
    func theModelWorksInALocalSandboxAndCannotLeaveIt(api: WireAPI) async throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("flue-local-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createDirectory(atPath: base + "/root", withIntermediateDirectories: true)
        try "alpha\nTODO: beta\ngamma\n".write(toFile: base + "/root/notes.txt", atomically: false, encoding: .utf8)
        try "not for the model".write(toFile: base + "/outside", atomically: false, encoding: .utf8)
        // Links inside the root that lead out of it: to a file and to a directory.
        try FileManager.default.createSymbolicLink(atPath: base + "/root/secret.txt", withDestinationPath: base + "/outside")
        try FileManager.default.createSymbolicLink(atPath: base + "/root/escape", withDestinationPath: base)
        let f = try await Fixture.start()
        let agent = try Agent(
            name: "writer", model: api.model, instructions: "Write reports.", sandbox: .local(root: base + "/root"))
        await f.enqueue(
            .toolCall("write", ["path": "report.md", "content": "# Report\nstatus: draft\n"]),
            .toolCall("grep", ["pattern": "TODO", "glob": "*.txt"]),
            .toolCall("edit", ["path": "report.md", "old_string": "status: draft", "new_string": "status: final"]),
            .toolCall("bash", ["command": "cat report.md | wc -l && ls"]),
            .toolCall("read", ["path": "../outside"]),
            .toolCall("read", ["path": "/etc/passwd"]),
            .toolCall("read", ["path": "secret.txt"]),
            .toolCall("grep", ["pattern": "not for the model"]),
            .text("Done."))
        let harness = f.harness(agent)
        let response = try await harness.session().prompt("Write the report.")
        #expect(response.text == "Done.")

        let root = try await harness.files.workingDirectory
        #expect(try String(contentsOfFile: root + "/report.md", encoding: .utf8) == "# Report\nstatus: final\n", "on disk")
        let requests = await f.requests()
        #expect(requests.count == 9)
        let results = try #require(requests.last).toolResults.map(\.content)
        #expect(results.count == 8)
        #expect(results[0] == "wrote 23 bytes to report.md")
        #expect(
            results[1] == "notes.txt:2:TODO: beta\n[1 file(s) could not be read and were skipped: secret.txt (path_outside_sandbox)]")
        #expect(results[2] == "edited report.md: 1 replacement")
        #expect(results[3] == "2\nescape\nnotes.txt\nreport.md\nsecret.txt\n[exit code 0]", "a real shell over the same files")
        #expect(results[4].contains("path ../outside leads outside the sandbox"), "\(results[4])")
        #expect(results[5].contains("path /etc/passwd leads outside the sandbox"), "\(results[5])")
        #expect(results[6].contains("leads outside the sandbox"), "a link out is refused: \(results[6])")
        #expect(
            results[7] == "no matches for not for the model\n[2 file(s) could not be read and were skipped: "
                + "escape (path_outside_sandbox), secret.txt (path_outside_sandbox)]")
        #expect(!results.dropLast().contains { $0.contains("not for the model") || $0.contains("root:x:0:0") })
        let toolEvents = f.log.all.compactMap { event -> String? in
            if case .tool(let end) = event.body { "\(end.toolName):\(end.isError)" } else { nil }
        }
        #expect(
            toolEvents == [
                "write:false", "grep:false", "edit:false", "bash:false", "read:true", "read:true", "read:true", "grep:false",
            ])
    }
}

extension SandboxToolTests {
    static let releaseNotes = """
        ---
        name: release-notes
        description: "Write release notes: one line per change, grouped by area."
        ---
        Group the changes by area. One line each, newest first.
        """

    @Test(arguments: WireAPI.allCases)
    func aSkillFromSKILLmdIsListedAndActivatedOnDemand(api: WireAPI) async throws {
        let f = try await Fixture.start()
        let agent = try Agent(
            name: "notes", model: api.model,
            sandbox: .virtual(files: [
                ".agents/skills/release-notes/SKILL.md": Self.releaseNotes,
                ".agents/skills/broken/SKILL.md": "no frontmatter here",
            ]),
            builtinTools: .none)
        await f.enqueue(.toolCall("activate_skill", ["name": "release-notes"]), .text("- api: faster"))
        let response = try await f.session(agent).prompt("Notes for: faster api")
        #expect(response.text == "- api: faster")
        let requests = await f.requests()
        let system = try #require(requests.first?.systemPrompt)
        #expect(system.contains("- release-notes: Write release notes: one line per change, grouped by area."))
        #expect(!system.contains("Group the changes by area"), "instructions load on demand only")
        #expect(requests.first?.toolSchema("activate_skill") != nil)
        #expect(requests.last?.toolResults.first?.content == "# Skill: release-notes\n\nGroup the changes by area. One line each, newest first.")
        let warnings = f.log.all.compactMap { event -> String? in
            if case .log(let record) = event.body, record.level == .warn { record.message } else { nil }
        }
        #expect(warnings.contains { $0.contains(".agents/skills/broken/SKILL.md") }, "a broken SKILL.md is skipped with a warning")
    }

    struct Headline: Codable, Sendable {
        var headline: String
    }

    @Test func codeRunsASkillForAStructuredResult() async throws {
        let f = try await Fixture.start()
        let skill = try Skill(name: "headline", description: "Write a headline.", instructions: "At most eight words.")
        let agent = try Agent(name: "editor", model: WireAPI.anthropic.model, skills: [skill])
        await f.enqueue(.finish(["headline": "Flue ships skills"]))
        let session = try await f.session(agent)
        let result = try await session.skill("headline", arguments: ["topic": "skills"], result: Headline.self)
        #expect(result.headline == "Flue ships skills")
        let sent = try #require(await f.requests().first).userTexts.joined()
        #expect(sent.contains("Follow the skill headline") && sent.contains("At most eight words.") && sent.contains("\"topic\" : \"skills\""))
        let kinds = f.log.all.compactMap { event -> String? in
            if case .operationStart(let start) = event.body { start.operationKind.rawValue } else { nil }
        }
        #expect(kinds == ["skill"])
        let missing = await #expect(throws: FlueError.self) {
            try await session.skill("nope", result: Headline.self)
        }
        #expect(missing?.kind == .skillNotFound)
    }
}

/// No arguments worth naming (a tool's arguments are an object; an empty struct has no schema).
struct Empty: Codable, Sendable {
    var note: String?
}

/// How many callers are inside at once, and the most there ever were.
final class Gauge: Sendable {
    private let state = Mutex<(now: Int, peak: Int)>((0, 0))
    func enter() { state.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) } }
    func leave() { state.withLock { $0.now -= 1 } }
    var peak: Int { state.withLock { $0.peak } }
}
