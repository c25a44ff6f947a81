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
    ///
    /// The sandboxes of the `retainedInstances` most recently opened instances are kept between
    /// harnesses (an agent instance finds its files again at its next prompt); an older one is
    /// dropped and that instance starts from `files` again. With `retainedInstances: 0` nothing is
    /// kept: every harness gets a fresh sandbox, freed with it — what a workflow that stages its
    /// inputs per run wants. A negative count counts as 0.
    ///
    /// Each sandbox holds at most `capacity` bytes of files (64 MiB), so the provider's memory is
    /// bounded by `retainedInstances × capacity` plus the sandboxes of harnesses still open.
    public static func virtual(
        files: [String: String] = [:], retainedInstances: Int = 256, capacity: Int = 64 << 20
    ) -> SandboxProvider {
        let cache = VirtualSandboxes(limit: max(0, retainedInstances))
        return SandboxProvider { scope in
            if let open = cache.lookUp(scope) { return open }
            return cache.keep(try VirtualSandbox(files: files, capacity: capacity), for: scope)
        }
    }
}

/// The virtual sandboxes one provider keeps, by scope, the least recently opened dropped first.
private final class VirtualSandboxes: Sendable {
    private struct Entry {
        var sandbox: VirtualSandbox
        var lastUse: UInt64
    }

    private let limit: Int
    private let state = Mutex<(entries: [SandboxProvider.Scope: Entry], clock: UInt64)>(([:], 0))

    init(limit: Int) { self.limit = limit }

    func lookUp(_ scope: SandboxProvider.Scope) -> VirtualSandbox? {
        state.withLock { state in
            guard var entry = state.entries[scope] else { return nil }
            state.clock &+= 1
            entry.lastUse = state.clock
            state.entries[scope] = entry
            return entry.sandbox
        }
    }

    /// Keeps `fresh` for `scope` (or returns the sandbox another caller kept first).
    func keep(_ fresh: VirtualSandbox, for scope: SandboxProvider.Scope) -> VirtualSandbox {
        guard limit > 0 else { return fresh }
        return state.withLock { state in
            state.clock &+= 1
            if let raced = state.entries[scope] { return raced.sandbox }
            state.entries[scope] = Entry(sandbox: fresh, lastUse: state.clock)
            if state.entries.count > limit,
                let oldest = state.entries.min(by: { $0.value.lastUse < $1.value.lastUse })?.key
            {
                state.entries[oldest] = nil
            }
            return fresh
        }
    }
}
