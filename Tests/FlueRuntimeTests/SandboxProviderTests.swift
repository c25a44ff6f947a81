@testable import FlueRuntime
import Testing

/// Which virtual sandboxes a provider keeps between harnesses.
@Suite struct SandboxProviderTests {
    static func scope(_ id: String) -> SandboxProvider.Scope {
        SandboxProvider.Scope(agent: "a", instanceId: id, harness: "default")
    }

    /// Writes a marker into the instance's sandbox and reports whether it was already there.
    static func touch(_ provider: SandboxProvider, _ id: String) async throws -> Bool {
        let sandbox = try await provider.open(scope(id))
        let found = try await sandbox.exists("marker")
        try await sandbox.writeText("marker", id)
        return found
    }

    @Test func theMostRecentlyUsedInstancesKeepTheirFilesAndOlderOnesStartOver() async throws {
        let provider = SandboxProvider.virtual(retainedInstances: 2)
        #expect(try await Self.touch(provider, "one") == false)
        #expect(try await Self.touch(provider, "two") == false)
        #expect(try await Self.touch(provider, "one") == true, "kept: one of the two most recent")
        #expect(try await Self.touch(provider, "three") == false)
        #expect(try await Self.touch(provider, "two") == false, "dropped as the least recently used")
        #expect(try await Self.touch(provider, "one") == false, "dropped when two came back")
    }

    @Test func withNothingRetainedEveryOpenIsFresh() async throws {
        let provider = SandboxProvider.virtual(files: ["seed.txt": "s"], retainedInstances: 0)
        #expect(try await Self.touch(provider, "run") == false)
        #expect(try await Self.touch(provider, "run") == false)
        #expect(try await provider.open(Self.scope("run")).readText("seed.txt") == "s")
    }
}
