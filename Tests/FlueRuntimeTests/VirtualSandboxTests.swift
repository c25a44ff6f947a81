import FlueRuntime
import Foundation
import Testing

/// The virtual sandbox's file tree and its shell subset, without a model.
@Suite struct VirtualSandboxTests {
    @Test func filesLiveUnderTheWorkingDirectoryAndCannotClimbAboveTheRoot() async throws {
        let sandbox = try VirtualSandbox(files: ["notes/todo.txt": "one\ntwo\n"])
        #expect(sandbox.workingDirectory == "/workspace")
        #expect(try await sandbox.readText("notes/todo.txt") == "one\ntwo\n")
        #expect(try await sandbox.readText("/workspace/notes/todo.txt") == "one\ntwo\n")
        try await sandbox.writeText("a/b/c.txt", "deep")
        #expect(try await sandbox.stat("a/b")?.isDirectory == true)
        #expect(try await sandbox.list(".").map(\.name) == ["a", "notes"])
        #expect(try await sandbox.readText("../workspace/a/b/c.txt") == "deep", "inside the root is fine")
        for escape in ["../../etc/passwd", "/../x", "a/../../../x"] {
            let error = await #expect(throws: FlueError.self) { try await sandbox.readFile(escape) }
            #expect(error?.kind == .pathOutsideSandbox, "\(escape)")
        }
        let missing = await #expect(throws: FlueError.self) { try await sandbox.readFile("nope.txt") }
        #expect(missing?.kind == .fileNotFound)
        let notEmpty = await #expect(throws: FlueError.self) { try await sandbox.remove("a", recursive: false) }
        #expect(notEmpty?.kind == .invalidFileOperation)
        try await sandbox.remove("a", recursive: true)
        #expect(try await sandbox.exists("a/b/c.txt") == false)
    }

    @Test func theShellSubsetStagesAndInspectsFiles() async throws {
        let sandbox = try VirtualSandbox()
        func run(_ command: String, env: [String: String] = [:]) async throws -> ExecResult {
            try await sandbox.exec(command, options: ExecOptions(environment: env))
        }
        #expect(try await run("echo hello > a.txt && echo world >> a.txt && cat a.txt").stdout == "hello\nworld\n")
        #expect(try await run("printf '%s=%d\\n' x 1 y 2").stdout == "x=1\ny=2\n")
        #expect(try await run("printf '100%%\\n' extra").stdout == "100%\n", "a format that takes no operand runs once")
        #expect(try await run("cat a.txt | grep -n o | wc -l").stdout == "2\n")
        #expect(try await run("grep -c world a.txt").stdout == "1\n")
        #expect(try await run("grep nothing a.txt").exitCode == 1)
        #expect(try await run("printf 'b\\na\\nc\\n' | sort -r | head -n 2").stdout == "c\nb\n")
        #expect(try await run("printf '1\\n2\\n3\\n' | tail -n 1").stdout == "3\n")
        #expect(try await run("mkdir -p src/lib && touch src/lib/x.swift src/y.md && ls src").stdout == "lib\ny.md\n")
        #expect(try await run("find . -name '*.swift'").stdout == "./src/lib/x.swift\n")
        #expect(try await run("find src -type d").stdout == "src\nsrc/lib\n")
        #expect(try await run("cp a.txt b.txt && mv b.txt src/ && ls src").stdout == "b.txt\nlib\ny.md\n")
        #expect(try await run("cp -r src copy && ls copy/lib").stdout == "x.swift\n")
        #expect(try await run("rm -r copy && ls").stdout == "a.txt\nsrc\n")
        #expect(try await run("cd src && pwd").stdout == "/workspace/src\n")
        #expect(try await run("pwd").stdout == "/workspace\n", "cd lasts for one command line")
        #expect(try await run("echo \"$GREETING, ${NAME}\" 'no $EXPANSION'", env: ["GREETING": "hi", "NAME": "bob"]).stdout
            == "hi, bob no $EXPANSION\n")
        #expect(try await run("cat src/*.md; ls src/*.txt").stdout == "src/b.txt\n")
        #expect(try await run("false || echo recovered").stdout == "recovered\n")
        #expect(try await run("false && echo skipped").stdout == "")
        #expect(try await run("wc -l < a.txt").stdout == "2\n")
        let unsupported = try await run("curl https://example.com")
        #expect(unsupported.exitCode == 127)
        #expect(unsupported.stderr.contains("not supported in the virtual sandbox"))
        let missing = try await run("cat nope.txt")
        #expect(missing.exitCode == 1 && missing.stderr == "cat: nope.txt: No such file or directory\n")
        #expect(try await run("cat ../../etc/passwd").stderr.contains("Outside the sandbox"))
        let long = try await sandbox.exec("printf 'xxxxxxxxxx'", options: ExecOptions(outputLimit: 4))
        #expect(long.truncated && long.stdout.hasPrefix("xxxx\n[output truncated: 6 more bytes]"))
    }

    /// Found by review: shell forms a model writes, and what it must not be able to do.
    @Test func newlinesRedirectsOptionsAndLimits() async throws {
        let sandbox = try VirtualSandbox(capacity: 1 << 20)
        func run(_ command: String, timeout: Duration = .seconds(10)) async throws -> ExecResult {
            try await sandbox.exec(command, options: ExecOptions(timeout: timeout))
        }
        #expect(try await run("mkdir -p out\necho hi > out/x\ncat out/x").stdout == "hi\n", "a newline separates commands")
        #expect(try await run("echo one \\\ntwo").stdout == "one two\n", "a backslash-newline continues the line")
        #expect(try await run("cat nope 2>&1").stdout == "cat: nope: No such file or directory\n")
        let quiet = try await run("cat nope 2>/dev/null; echo gone >/dev/null")
        #expect(quiet.stdout == "" && quiet.stderr == "")
        _ = try await run("cat out/x nope &> both.txt")
        #expect(try await sandbox.readText("both.txt") == "hi\ncat: nope: No such file or directory\n")
        _ = try await run("cat nope 2> err.txt")
        #expect(try await sandbox.readText("err.txt") == "cat: nope: No such file or directory\n")
        let long = try await run("grep --color=never hi out/x")
        #expect(long.exitCode == 2 && long.stderr.contains("--color=never is not supported"))
        #expect(try await run("rm --verbose out").exitCode == 2)
        #expect(try await sandbox.exists("out/x"), "an unknown option deletes nothing")
        #expect(try await run("grep -A 3 hi out/x").exitCode == 2)
        #expect(try await run("printf 'a\\nb\\nc\\n' | tail -n +2").stdout == "b\nc\n")
        #expect(try await run("echo -e 'a\\tb'").stdout == "a\tb\n")
        #expect(try await run("grep -r hi").stdout.contains("./out/x:hi\n"), "grep -r searches . without a path")
        #expect(try await run("find out/ -type f").stdout == "out/x\n")
        #expect(try await run("ls [!b]*").stdout.contains("err.txt"))
        #expect(try await run("rm -r $UNSET_VARIABLE").exitCode == 0)
        #expect(try await sandbox.exists("out/x"), "an empty unquoted expansion is no operand")
        for remove in ["rm -rf .", "rm -rf /workspace", "rm -rf /", "mv /workspace /elsewhere"] {
            #expect(try await run(remove).exitCode == 1, "\(remove)")
        }
        #expect(try await sandbox.exists("out/x"))
        #expect(try await run("cp -r / /copy").exitCode == 1)
        #expect(try await run("echo root > /top.txt && ls /*.txt").stdout == "/top.txt\n")
        // CRLF text counts its lines.
        try await sandbox.writeText("crlf.txt", "a\r\nb\r\n")
        #expect(try await run("wc -l crlf.txt").stdout == "2 crlf.txt\n")
        #expect(try await run("head -n 1 crlf.txt").stdout == "a\n")
        // The capacity bounds what a model can make the server hold.
        _ = try await run("printf 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' > b.txt")
        let grow = try await run(String(repeating: "cat b.txt b.txt b.txt b.txt > c.txt && cat c.txt c.txt c.txt c.txt > b.txt && ", count: 6) + "true")
        #expect(grow.exitCode == 1 && grow.stderr.contains("the virtual sandbox is full"))
        let timedOut = try await run("echo a; echo b", timeout: .zero)
        #expect(timedOut.exitCode == 124)
    }

    @Test func concurrentUpdatesOfOneFileAllApply() async throws {
        let sandbox = try VirtualSandbox(files: ["count.txt": ""])
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<50 {
                group.addTask { try? await sandbox.updateText("count.txt") { $0 + "\(index)\n" } }
            }
        }
        #expect(try await sandbox.readText("count.txt").splitLines().count == 50)
    }

    @Test func globPatterns() {
        #expect(Glob.matches("a.swift", "*.swift"))
        #expect(!Glob.matches("src/a.swift", "*.swift"))
        #expect(Glob.matches("src/a.swift", "**/*.swift"))
        #expect(Glob.matches("a.swift", "**/*.swift"))
        #expect(Glob.matches("notes (1).md", "notes (?).md"))
        #expect(Glob.matches("b.txt", "[ab].txt") && !Glob.matches("c.txt", "[ab].txt"))
        #expect(Glob.matches("c.txt", "[!ab].txt") && !Glob.matches("a.txt", "[!ab].txt"))
    }
}
