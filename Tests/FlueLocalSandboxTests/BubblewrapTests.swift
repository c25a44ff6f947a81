@testable import FlueLocalSandbox
import FlueRuntime
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The local sandbox isolated with bubblewrap (skipped where `bwrap` is not installed; .ci/run
/// installs it), and the clear error where it cannot be had.
@Suite struct BubblewrapTests {
    @Test(.enabled(if: bubblewrapInstalled, "needs bwrap (apt-get install bubblewrap)"))
    func anIsolatedCommandHasNoNetworkAReadOnlySystemAndOnlyItsRootWritable() async throws {
        try await withTemporaryDirectory { root in
            let sandbox = try await LocalSandbox(root: root, isolation: .bubblewrap, environment: ["GIVEN": "yes"])
            #expect(sandbox.isolation == .bubblewrap)
            func run(_ command: String) async throws -> ExecResult { try await sandbox.exec(command) }

            let interfaces = try await run("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
            #expect(interfaces.stdout == "lo\n", "no network but loopback")
            #expect(try await run("touch /usr/flue-x").exitCode != 0, "the system is read-only")
            #expect(try await run("touch /etc/flue-x").exitCode != 0)
            #expect(!FileManager.default.fileExists(atPath: "/usr/flue-x"))
            let marker = "flue-private-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            #expect(try await run("touch /tmp/\(marker) && ls /tmp/\(marker)").exitCode == 0, "/tmp is writable")
            #expect(!FileManager.default.fileExists(atPath: "/tmp/\(marker)"), "… and private")
            let inside = try await run("pwd && echo written > inside.txt")
            #expect(inside.stdout == root + "\n", "the root is at its own path")
            #expect(hostRead(root + "/inside.txt") == "written\n", "writes inside the root reach the host")
            try await sandbox.writeText("from-tool.txt", "tool\n")
            #expect(try await run("cat from-tool.txt").stdout == "tool\n")
            let environment = try await run("env").stdout
            let names = Set(environment.split(separator: "\n").compactMap { $0.split(separator: "=").first.map(String.init) })
            let allowed: Set = ["PATH", "HOME", "TERM", "LANG", "LC_ALL", "LC_CTYPE", "GIVEN", "PWD", "SHLVL", "_", "OLDPWD"]
            #expect(names.subtracting(allowed).isEmpty, "the server's environment stays out: \(names.sorted())")
            #expect(environment.contains("GIVEN=yes") && environment.contains("HOME=\(root)"))
            #expect(try await run("test -e /root || test -e /home/flue-nobody || echo hidden").stdout == "hidden\n", "no home directories")
            let processes = try await run("ls /proc | grep -c '^[0-9]*$'")
            #expect((Int(processes.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 99) < 10, "its own pid namespace")
            #expect(try await run("kill -0 \(getpid())").exitCode != 0, "the server is not visible")
        }
    }

    @Test(.enabled(if: bubblewrapInstalled, "needs bwrap (apt-get install bubblewrap)"))
    func aTimeoutUnderBubblewrapKillsEverythingInside() async throws {
        try await withTemporaryDirectory { root in
            let sandbox = try await LocalSandbox(root: root, isolation: .bubblewrap)
            let tag = 30_000 + Int.random(in: 0..<9_999)
            let result = try await sandbox.exec(
                "sleep \(tag) & setsid sleep \(tag + 1) & sleep 30", options: ExecOptions(timeout: .seconds(1)))
            #expect(result.exitCode == 124)
            #expect(await eventually { processes(matching: "sleep \(tag)").isEmpty && processes(matching: "sleep \(tag + 1)").isEmpty },
                "the background and the setsid process died with the sandbox")
        }
    }

    @Test func bubblewrapThatIsMissingOrBrokenFailsAtCreationWithAClearError() async throws {
        try await withTemporaryDirectory { base in
            try FileManager.default.createDirectory(atPath: base + "/empty", withIntermediateDirectories: true)
            let missing = await #expect(throws: FlueError.self) {
                try await LocalSandbox(
                    root: base + "/root", isolation: .bubblewrap, environment: [:], bubblewrapSearchPath: base + "/empty")
            }
            #expect(missing?.kind == .sandboxUnavailable)
            #expect(missing?.type == "sandbox_unavailable")
            #expect(missing?.message.contains("bwrap") == true && missing?.message.contains("bubblewrap") == true)

            // A bwrap that cannot build its sandbox (as on a host without user namespaces).
            try hostWrite(base + "/broken/bwrap", "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
            chmod(base + "/broken/bwrap", 0o755)
            let broken = await #expect(throws: FlueError.self) {
                try await LocalSandbox(
                    root: base + "/root", isolation: .bubblewrap, environment: [:], bubblewrapSearchPath: base + "/broken")
            }
            #expect(broken?.kind == .sandboxUnavailable)
            #expect(broken?.message.contains("No permissions to create new namespace") == true)

            // Without isolation nothing is looked up.
            _ = try await LocalSandbox(root: base + "/root", isolation: .none, environment: [:], bubblewrapSearchPath: base + "/empty")
        }
    }
}
