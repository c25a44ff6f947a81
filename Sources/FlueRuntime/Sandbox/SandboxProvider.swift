import Synchronization

/// Where an agent's sandbox comes from: chosen per agent (``Agent/sandbox``), opened once per
/// agent instance and harness, shared by the instance's sessions and prompts.
public struct SandboxProvider: Sendable {
    /// Which instance a sandbox is for.
    public struct Scope: Sendable, Hashable {
        public var agent: String
        public var instanceId: String
        public var harness: String
    }

    let open: @Sendable (Scope) async throws -> any Sandbox

    /// Opens sandboxes with `open` (e.g. a directory per instance).
    public init(open: @escaping @Sendable (Scope) async throws -> any Sandbox) {
        self.open = open
    }

    /// A ``VirtualSandbox`` per agent instance and harness, kept in this process's memory (a
    /// restart, or another replica, starts from `files` again), each starting with `files`
    /// (path → text; relative paths under `/workspace`).
    public static func virtual(files: [String: String] = [:]) -> SandboxProvider {
        let cache = VirtualSandboxes()
        return SandboxProvider { scope in
            if let open = cache.sandboxes.withLock({ $0[scope] }) { return open }
            let fresh = try VirtualSandbox(files: files)
            return cache.sandboxes.withLock { sandboxes in
                if let raced = sandboxes[scope] { return raced }
                sandboxes[scope] = fresh
                return fresh
            }
        }
    }
}

/// The virtual sandboxes one provider opened, by scope.
private final class VirtualSandboxes: Sendable {
    let sandboxes = Mutex<[SandboxProvider.Scope: VirtualSandbox]>([:])
}
