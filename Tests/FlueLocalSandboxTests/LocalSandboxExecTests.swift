@testable import FlueLocalSandbox
import FlueRuntime
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Commands in the local sandbox: real processes, their environment, their process group, their
/// output.
@Suite struct LocalSandboxExecTests {
    @Test func commandsRunInTheRootWithStdoutStderrAndExitCode() async throws {
        try await withTemporaryDirectory { root in
            let sandbox = try await LocalSandbox(root: root)
            let result = try await sandbox.exec("echo out; echo err >&2; exit 3")
            #expect(result == ExecResult(stdout: "out\n", stderr: "err\n", exitCode: 3, truncated: false))
            #expect(try await sandbox.exec("pwd").stdout == root + "\n")
            try await sandbox.makeDirectory("sub/dir")
            let inSub = try await sandbox.exec("pwd && echo made > here.txt", options: ExecOptions(workingDirectory: "sub/dir"))
            #expect(inSub.stdout == root + "/sub/dir\n")
            #expect(try await sandbox.readText("sub/dir/here.txt") == "made\n", "commands and file tools share the files")
            let absolute = try await sandbox.exec("pwd", options: ExecOptions(workingDirectory: root + "/sub"))
            #expect(absolute.stdout == root + "/sub\n")
            let missing = await #expect(throws: FlueError.self) {
                try await sandbox.exec("pwd", options: ExecOptions(workingDirectory: "nowhere"))
            }
            #expect(missing?.kind == .fileNotFound)
            #expect(try await sandbox.exec("kill -TERM $$").exitCode == 128 + SIGTERM, "a signal reports 128 + signal")
            #expect(try await sandbox.exec("cat").stdout == "", "stdin is empty")
            if FileManager.default.isExecutableFile(atPath: "/bin/bash") {
                #expect(try await sandbox.exec("[[ -n $BASH_VERSION ]] && echo bash").stdout == "bash\n")
            }
        }
    }

    @Test func theServersEnvironmentStaysOutExceptTheAllowlist() async throws {
        // The test process's own environment stands in for the server's (CI sets CI and
        // TEST_DATABASE_URL, a database URL with credentials): none of it but the allowlist may
        // reach the command. (Setting variables here instead would race with other tests'
        // getenv calls: setenv is not thread-safe.)
        let allowed: Set = ["PATH", "HOME", "TERM", "LANG", "LC_ALL", "LC_CTYPE", "GIVEN", "CONFIGURED", "PWD", "SHLVL", "_", "OLDPWD"]
        let secrets = ProcessInfo.processInfo.environment.keys.filter { !allowed.contains($0) }
        try #require(!secrets.isEmpty, "the test process has no variable outside the allowlist to check")
        try await withTemporaryDirectory { root in
            let sandbox = try await LocalSandbox(root: root, environment: ["CONFIGURED": "by-the-app", "TERM": "xterm"])
            let output = try await sandbox.exec("env", options: ExecOptions(environment: ["GIVEN": "per-call", "CONFIGURED": "overridden"])).stdout
            let leaked = secrets.filter { output.contains("\n\($0)=") || output.hasPrefix("\($0)=") }
            #expect(leaked.isEmpty, "server variables reached the command")
            let variables = Dictionary(
                output.split(separator: "\n").compactMap { line -> (String, String)? in
                    guard let equals = line.firstIndex(of: "=") else { return nil }
                    return (String(line[..<equals]), String(line[line.index(after: equals)...]))
                }, uniquingKeysWith: { $1 })
            #expect(variables["GIVEN"] == "per-call")
            #expect(variables["CONFIGURED"] == "overridden", "the call's variables override the sandbox's")
            #expect(variables["TERM"] == "xterm", "the sandbox's variables override the defaults")
            #expect(variables["HOME"] == root)
            #expect(variables["PATH"] == (ProcessInfo.processInfo.environment["PATH"] ?? LocalSandbox.defaultPath))
            #expect(Set(variables.keys).subtracting(allowed).isEmpty, "only allowlisted names: \(variables.keys.sorted())")
        }
    }

    @Test func aTimeoutKillsTheWholeProcessGroupAndReports124() async throws {
        try await withTemporaryDirectory { root in
            let sandbox = try await LocalSandbox(root: root)
            let started = ContinuousClock.now
            let result = try await sandbox.exec(
                "sleep 30 & echo $! > grandchild.pid; echo $$ > shell.pid; echo started; sleep 30",
                options: ExecOptions(timeout: .seconds(1)))
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(result.exitCode == 124)
            #expect(result.stdout == "started\n", "output before the timeout is kept")
            #expect(result.stderr.contains("[timed out after 1 s"))
            for file in ["grandchild.pid", "shell.pid"] {
                let pid = try #require(Int32(try await sandbox.readText(file).trimmingCharacters(in: .whitespacesAndNewlines)))
                #expect(await eventually { !isRunning(pid) }, "\(file) \(pid) is gone")
            }
            // A shell that ignores SIGTERM is killed after the grace period.
            let stubborn = try await sandbox.exec("trap '' TERM; sleep 30", options: ExecOptions(timeout: .milliseconds(300)))
            #expect(stubborn.exitCode == 124)
        }
    }

    @Test func processesLeftRunningAreKilledWhenTheShellExits() async throws {
        try await withTemporaryDirectory { root in
            let sandbox = try await LocalSandbox(root: root)
            let started = ContinuousClock.now
            let result = try await sandbox.exec("sleep 30 & echo $! > left.pid; echo done")
            #expect(result.stdout == "done\n" && result.exitCode == 0)
            #expect(ContinuousClock.now - started < .seconds(5), "a background process holding the pipes does not hold the call")
            let pid = try #require(Int32(try await sandbox.readText("left.pid").trimmingCharacters(in: .whitespacesAndNewlines)))
            #expect(await eventually { !isRunning(pid) })
            // Its own session and group: the shell leads both.
            let ids = try await sandbox.exec("cut -d' ' -f1,5,6 /proc/$$/stat").stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            #expect(ids.count == 3 && ids[0] == ids[1] && ids[1] == ids[2], "pid == process group == session: \(ids)")
        }
    }

    @Test func cancellingTheTaskKillsTheGroup() async throws {
        try await withTemporaryDirectory { root in
            let sandbox = try await LocalSandbox(root: root)
            let task = Task {
                try await sandbox.exec("sleep 30 & echo $! > grandchild.pid; echo $$ > shell.pid; sleep 30")
            }
            #expect(await eventually { FileManager.default.fileExists(atPath: root + "/shell.pid") })
            try await Task.sleep(for: .milliseconds(50))
            let started = ContinuousClock.now
            task.cancel()
            let outcome = await task.result
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(throws: CancellationError.self) { try outcome.get() }
            for file in ["grandchild.pid", "shell.pid"] {
                let pid = try #require(Int32(try await sandbox.readText(file).trimmingCharacters(in: .whitespacesAndNewlines)))
                #expect(await eventually { !isRunning(pid) }, "\(file) \(pid) is gone")
            }
        }
    }

    @Test func outputIsCappedPerStreamAndTheRestIsDrained() async throws {
        try await withTemporaryDirectory { root in
            let sandbox = try await LocalSandbox(root: root)
            let big = try await sandbox.exec(
                "head -c 5000000 /dev/zero | tr '\\0' a; head -c 3000 /dev/zero | tr '\\0' b >&2; echo finished > done.txt",
                options: ExecOptions(outputLimit: 1000))
            #expect(big.exitCode == 0)
            #expect(big.truncated)
            #expect(big.stdout == String(repeating: "a", count: 1000) + "\n[output truncated: 4999000 more bytes]")
            #expect(big.stderr == String(repeating: "b", count: 1000) + "\n[output truncated: 2000 more bytes]")
            #expect(try await sandbox.readText("done.txt") == "finished\n", "the command ran to its end")

            let characters = try await sandbox.exec("printf 'ééééé'", options: ExecOptions(outputLimit: 5))
            #expect(characters.stdout == "éé\n[output truncated: 6 more bytes]", "cut at a whole character")
            let exact = try await sandbox.exec("printf 12345", options: ExecOptions(outputLimit: 5))
            #expect(exact.stdout == "12345" && !exact.truncated)
            let none = try await sandbox.exec("echo x; echo y >&2", options: ExecOptions(outputLimit: 0))
            #expect(none.stdout == "\n[output truncated: 2 more bytes]" && none.stderr == "\n[output truncated: 2 more bytes]")
            let invalid = try await sandbox.exec("printf '\\377ok'")
            #expect(invalid.stdout == "\u{FFFD}ok", "invalid UTF-8 is replaced")
        }
    }

    @Test func theCapKeepsTheFirstBytesAndNeverTraps() {
        var output = CappedOutput(limit: 3)
        Array("héllo".utf8).withUnsafeBytes { output.append($0) }
        #expect(output.text == "hé\n[output truncated: 3 more bytes]")
        var negative = CappedOutput(limit: -5)
        [UInt8](repeating: 65, count: 10).withUnsafeBytes { negative.append($0) }
        #expect(negative.text == "\n[output truncated: 10 more bytes]")
        #expect(CappedOutput.characterBoundary(Array("aé".utf8).dropLast()) == 1)
        #expect(CappedOutput.characterBoundary(Array("a😀".utf8)) == 5)
        #expect(CappedOutput.characterBoundary(Array(Array("a😀".utf8).prefix(4))) == 1)
        #expect(LocalSandbox.describe(.milliseconds(1500)) == "1.5 s")
        #expect(LocalSandbox.describe(.milliseconds(250)) == "250 ms")
        #expect(LocalSandbox.describe(.seconds(120)) == "120 s")
    }
}
