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

    @Test func globPatterns() {
        #expect(Glob.matches("a.swift", "*.swift"))
        #expect(!Glob.matches("src/a.swift", "*.swift"))
        #expect(Glob.matches("src/a.swift", "**/*.swift"))
        #expect(Glob.matches("a.swift", "**/*.swift"))
        #expect(Glob.matches("notes (1).md", "notes (?).md"))
        #expect(Glob.matches("b.txt", "[ab].txt") && !Glob.matches("c.txt", "[ab].txt"))
    }
}
