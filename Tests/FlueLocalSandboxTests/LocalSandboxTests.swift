@testable import FlueLocalSandbox
import FlueRuntime
import Foundation
import Testing

/// The local sandbox's file operations on a real directory: the round trip, and every way out of
/// the root refused.
@Suite struct LocalSandboxTests {
    @Test func theRootIsCreatedAndResolvedAndFilesRoundTrip() async throws {
        try await withTemporaryDirectory { base in
            // The root is given through a symlinked parent and does not exist yet.
            try FileManager.default.createDirectory(atPath: base + "/real", withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: base + "/alias", withDestinationPath: base + "/real")
            let sandbox = try await LocalSandbox(root: base + "/alias/workspace")
            #expect(sandbox.root == base + "/real/workspace")
            #expect(sandbox.workingDirectory == sandbox.root)
            let root = sandbox.root

            try await sandbox.writeText("a/b/c.txt", "deep\n")
            #expect(hostRead(root + "/a/b/c.txt") == "deep\n", "parents are created on the host")
            #expect(try await sandbox.readText("a/b/c.txt") == "deep\n")
            #expect(try await sandbox.readText(root + "/a/b/c.txt") == "deep\n", "an absolute path inside the root")
            #expect(try await sandbox.readText("a/./b/../b/c.txt") == "deep\n")
            #expect(try await sandbox.stat("a/b") == SandboxFileInfo(isDirectory: true, size: 0))
            #expect(try await sandbox.stat("a/b/c.txt") == SandboxFileInfo(isDirectory: false, size: 5))
            #expect(try await sandbox.stat("nope") == nil)
            #expect(try await sandbox.stat("a/b/c.txt/under-a-file") == nil)

            try await sandbox.writeText("zeta.md", "z")
            try await sandbox.writeText("Alpha.md", "A")
            try await sandbox.makeDirectory("m/n")
            try await sandbox.makeDirectory("m/n")  // `mkdir -p`: an existing directory is fine
            let listing = try await sandbox.list(".")
            #expect(listing.map(\.name) == ["Alpha.md", "a", "m", "zeta.md"])
            #expect(listing.map(\.isDirectory) == [false, true, true, false])

            try await sandbox.writeText("zeta.md", "replaced")
            #expect(try await sandbox.readText("zeta.md") == "replaced", "a write replaces the whole file")
            try await sandbox.updateText("zeta.md") { $0 + "!" }
            #expect(hostRead(root + "/zeta.md") == "replaced!")

            let missing = await #expect(throws: FlueError.self) { try await sandbox.readFile("nope.txt") }
            #expect(missing?.kind == .fileNotFound)
            #expect(missing?.message.contains("nope.txt") == true)
            let directory = await #expect(throws: FlueError.self) { try await sandbox.readFile("a") }
            #expect(directory?.kind == .invalidFileOperation)
            let notADirectory = await #expect(throws: FlueError.self) { try await sandbox.list("zeta.md") }
            #expect(notADirectory?.kind == .invalidFileOperation)
            let ontoDirectory = await #expect(throws: FlueError.self) { try await sandbox.writeText("a/b", "x") }
            #expect(ontoDirectory?.kind == .invalidFileOperation)
            let fileInTheWay = await #expect(throws: FlueError.self) { try await sandbox.makeDirectory("zeta.md/sub") }
            #expect(fileInTheWay?.kind == .invalidFileOperation)
            let listMissing = await #expect(throws: FlueError.self) { try await sandbox.list("nowhere") }
            #expect(listMissing?.kind == .fileNotFound)

            let notEmpty = await #expect(throws: FlueError.self) { try await sandbox.remove("a", recursive: false) }
            #expect(notEmpty?.kind == .invalidFileOperation)
            try await sandbox.remove("a", recursive: true)
            #expect(try await sandbox.exists("a") == false)
            try await sandbox.remove("zeta.md", recursive: false)
            try await sandbox.remove("m/n", recursive: false)
            let removeMissing = await #expect(throws: FlueError.self) { try await sandbox.remove("zeta.md", recursive: false) }
            #expect(removeMissing?.kind == .fileNotFound)
            for rootPath in [".", root, "a/.."] {
                let rootRemoval = await #expect(throws: FlueError.self) { try await sandbox.remove(rootPath, recursive: true) }
                #expect(rootRemoval?.kind == .invalidFileOperation, "\(rootPath)")
            }
            #expect(FileManager.default.fileExists(atPath: root))
        }
    }

    @Test func pathsThatLeaveTheRootAreRefused() async throws {
        try await withTemporaryDirectory { base in
            let sandbox = try await LocalSandbox(root: base + "/root")
            try hostWrite(base + "/outside/secret.txt", "secret")
            try hostWrite(base + "/root/inside/kept.txt", "kept")
            let links = FileManager.default
            // A directory link out, a final-component link out, a dangling link out, and a link
            // that stays inside.
            try links.createSymbolicLink(atPath: base + "/root/out", withDestinationPath: base + "/outside")
            try links.createSymbolicLink(atPath: base + "/root/leak.txt", withDestinationPath: base + "/outside/secret.txt")
            try links.createSymbolicLink(atPath: base + "/root/dangling", withDestinationPath: "../outside/created.txt")
            try links.createSymbolicLink(atPath: base + "/root/relative-out", withDestinationPath: "inside/../../outside")
            try links.createSymbolicLink(atPath: base + "/root/alias", withDestinationPath: "inside")
            // A chain that hides a link out behind a missing component and `..`: a → nope/../out.
            try links.createSymbolicLink(atPath: base + "/root/chain", withDestinationPath: "nope/../out")

            func refused(_ operation: String, _ body: () async throws -> Void) async {
                let error = await #expect(throws: FlueError.self, "\(operation)") { try await body() }
                #expect(error?.kind == .pathOutsideSandbox, "\(operation): \(String(describing: error))")
            }
            for escape in ["../x", "../root/../x", "/etc/passwd", "/", base, base + "/outside/secret.txt", "a/../../x"] {
                await refused("read \(escape)") { _ = try await sandbox.readFile(escape) }
                let error = await #expect(throws: FlueError.self) { try await sandbox.readFile(escape) }
                #expect(error?.message.contains(escape) == true, "the message names the path")
            }
            await refused("write ../x") { try await sandbox.writeText("../x", "no") }
            await refused("read through a directory link") { _ = try await sandbox.readText("out/secret.txt") }
            await refused("write through a directory link") { try await sandbox.writeText("out/new.txt", "no") }
            await refused("create parents through a directory link") { try await sandbox.writeText("out/deep/new.txt", "no") }
            await refused("read a final link") { _ = try await sandbox.readText("leak.txt") }
            await refused("write a final link") { try await sandbox.writeText("leak.txt", "overwritten") }
            await refused("edit a final link") { try await sandbox.updateText("leak.txt") { _ in "overwritten" } }
            await refused("write a dangling link") { try await sandbox.writeText("dangling", "created") }
            await refused("a relative link that climbs out") { _ = try await sandbox.list("relative-out") }
            await refused("stat through a link") { _ = try await sandbox.stat("out/secret.txt") }
            await refused("list through a link") { _ = try await sandbox.list("out") }
            await refused("mkdir through a link") { try await sandbox.makeDirectory("out/sub") }
            await refused("remove through a link") { try await sandbox.remove("out/secret.txt", recursive: false) }
            await refused("a working directory outside") {
                _ = try await sandbox.exec("pwd", options: ExecOptions(workingDirectory: "out"))
            }
            for (operation, body) in [
                ("read", { _ = try await sandbox.readText("chain/secret.txt") }),
                ("edit", { try await sandbox.updateText("chain/secret.txt") { _ in "overwritten" } }),
                ("remove", { try await sandbox.remove("chain/secret.txt", recursive: true) }),
                ("list", { _ = try await sandbox.list("chain") }),
                ("write", { try await sandbox.writeText("chain/new.txt", "no") }),
            ] as [(String, () async throws -> Void)] {
                let error = await #expect(throws: FlueError.self, "\(operation) through a link chain with nope/..") {
                    try await body()
                }
                #expect(
                    error?.kind == .fileNotFound || error?.kind == .pathOutsideSandbox,
                    "\(operation): \(String(describing: error))")
            }
            #expect(hostRead(base + "/outside/secret.txt") == "secret", "nothing outside changed")
            #expect(!FileManager.default.fileExists(atPath: base + "/outside/new.txt"))
            #expect(!FileManager.default.fileExists(atPath: base + "/outside/deep"))
            #expect(!FileManager.default.fileExists(atPath: base + "/outside/created.txt"))
            #expect(!FileManager.default.fileExists(atPath: base + "/outside/sub"))

            // Links that stay inside work; links are listed as files, never walked into.
            #expect(try await sandbox.readText("alias/kept.txt") == "kept")
            try await sandbox.writeText("alias/via-link.txt", "ok")
            #expect(hostRead(base + "/root/inside/via-link.txt") == "ok")
            let entries = try await sandbox.list(".")
            #expect(entries.first { $0.name == "out" }?.isDirectory == false)
            #expect(entries.first { $0.name == "alias" }?.isDirectory == false)
            // Removing a link removes the link, not what it points to.
            try await sandbox.remove("leak.txt", recursive: false)
            try await sandbox.remove("out", recursive: true)
            #expect(hostRead(base + "/outside/secret.txt") == "secret")
        }
    }

    @Test func parallelEditsOfOneFileAllApply() async throws {
        try await withTemporaryDirectory { base in
            let sandbox = try await LocalSandbox(root: base)
            try await sandbox.writeText("log.txt", "")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<40 {
                    group.addTask { try await sandbox.updateText("log.txt") { $0 + "line \(index)\n" } }
                }
                try await group.waitForAll()
            }
            let lines = try await sandbox.readText("log.txt").split(separator: "\n")
            #expect(lines.count == 40)
            #expect(Set(lines).count == 40)
            #expect(sandbox.locks.count == 0, "the lock table empties")
        }
    }

    @Test func theProviderSharesOneSandboxOrGivesEachInstanceItsDirectory() async throws {
        try await withTemporaryDirectory { base in
            let shared = try Agent(name: "shared", sandbox: .local(root: base + "/shared"))
            let one = try await Harness(agent: shared, instanceId: "one", models: NoModels()).files
            let two = try await Harness(agent: shared, instanceId: "two", models: NoModels()).files
            #expect(one as? LocalSandbox === two as? LocalSandbox, "one sandbox for every instance")
            #expect(one.workingDirectory == base + "/shared")

            let separate = try Agent(name: "separate", sandbox: .local(root: base + "/per", perInstance: true))
            let alice = try await Harness(agent: separate, instanceId: "alice", models: NoModels()).files
            let evil = try await Harness(agent: separate, instanceId: "../alice", models: NoModels()).files
            #expect(alice.workingDirectory == base + "/per/separate/alice")
            #expect(evil.workingDirectory == base + "/per/separate/..%2Falice", "an id is one encoded component")
            try await alice.writeText("mine.txt", "alice")
            #expect(try await evil.exists("mine.txt") == false)
            #expect(LocalSandboxes.directoryName("a b") == "a%20b")
            #expect(LocalSandboxes.directoryName("a%20b") == "a%2520b", "distinct ids stay distinct")
            #expect(LocalSandboxes.directoryName("..") == "%2E%2E")
            #expect(LocalSandboxes.directoryName("") == "%")
        }
    }
}
