import Foundation
import Synchronization

/// An initialized agent: its definition, where models come from, where sessions are stored and
/// where events go. Open named sessions from it; each session is one conversation.
///
/// ```swift
/// let harness = Harness(agent: assistant, instanceId: "user-42", models: providers)
/// let session = try await harness.session()
/// let reply = try await session.prompt("Hello")
/// ```
public final class Harness: Sendable {
    public let agent: Agent
    /// The agent instance (or workflow run) this harness works for.
    public let instanceId: String
    /// The harness name, `default` unless a workflow opens several.
    public let name: String
    /// Where this harness's events go.
    public let events: EventEmitter
    let models: any ModelResolver
    let store: any SessionStore
    /// Sessions open now, held weakly: a session holds its harness, so a strong map would keep
    /// both alive forever (one harness per workflow run and per submission attempt). A session
    /// nobody holds any more is loaded from the store again when next opened.
    private let openSessions = Mutex<(sessions: [String: WeakSession], installed: [String: Int])>(([:], [:]))

    private struct WeakSession: Sendable {
        weak var session: Session?
    }
    /// Sandboxes opened so far, by agent name (the harness's agent and its subagents).
    private let openedSandboxes = Mutex<[String: any Sandbox]>([:])

    public init(
        agent: Agent, instanceId: String, name: String = "default", models: any ModelResolver,
        store: any SessionStore = InMemorySessionStore(), events: EventEmitter = .discarding
    ) {
        self.agent = agent
        self.instanceId = instanceId
        self.name = name
        self.models = models
        self.store = store
        self.events = events
    }

    /// Opens (or creates) the named session, loading its stored history.
    public func session(_ name: String = "default") async throws -> Session {
        let key = SessionKey(agent: agent.name, instanceId: instanceId, harness: self.name, session: name)
        while true {
            let seen = openSessions.withLock { state -> (open: Session?, installs: Int) in
                (state.sessions[name]?.session, state.installed[name, default: 0])
            }
            if let open = seen.open { return open }
            let snapshot = try await store.loadSession(key) ?? SessionSnapshot()
            let session = Session(
                name: name, key: key, agent: agent, harness: self, snapshot: snapshot, persisted: true,
                parentSession: nil, taskId: nil, depth: 0)
            // A session installed (and maybe saved, then released) while this one loaded makes
            // the loaded snapshot possibly stale: look again.
            let installed = openSessions.withLock { state -> Session? in
                if let raced = state.sessions[name]?.session { return raced }
                guard state.installed[name, default: 0] == seen.installs else { return nil }
                state.sessions = state.sessions.filter { $0.value.session != nil }
                state.sessions[name] = WeakSession(session: session)
                state.installed[name, default: 0] += 1
                return session
            }
            if let installed { return installed }
        }
    }

    /// Deletes a session's stored history; fails with `session_busy` while it runs an operation.
    public func deleteSession(_ name: String) async throws {
        if let open = openSessions.withLock({ $0.sessions[name]?.session }) {
            try await open.ensureIdle()
        }
        let key = SessionKey(agent: agent.name, instanceId: instanceId, harness: self.name, session: name)
        try await store.deleteSession(key)
        _ = openSessions.withLock { $0.sessions.removeValue(forKey: name) }
    }

    /// The agent's sandbox for this instance, opened on first use; `nil` when the agent has none.
    public func sandbox() async throws -> (any Sandbox)? { try await sandbox(for: agent) }

    /// The sandbox of `profile` (this harness's agent, or a subagent running a task here) for this
    /// instance: each profile with a sandbox has its own; `nil` for a profile without one.
    func sandbox(for profile: Agent) async throws -> (any Sandbox)? {
        if let open = openedSandboxes.withLock({ $0[profile.name] }) { return open }
        guard let provider = profile.sandbox else { return nil }
        let opened = try await provider.open(.init(agent: profile.name, instanceId: instanceId, harness: name))
        return openedSandboxes.withLock { sandboxes in
            if let raced = sandboxes[profile.name] { return raced }
            sandboxes[profile.name] = opened
            return opened
        }
    }

    /// The sandbox's files, for application code: stage inputs before a prompt, collect outputs
    /// after. Throws `invalid_definition` when the agent has no sandbox.
    public var files: any Sandbox {
        get async throws {
            guard let sandbox = try await sandbox() else {
                throw FlueError(.invalidDefinition, "agent \(agent.name) has no sandbox; give it one (sandbox: .virtual())")
            }
            return sandbox
        }
    }

    /// Runs a command in the sandbox for application code: emits `tool_start`/`tool` events (tool
    /// `bash`) and adds nothing to any conversation. Throws `invalid_definition` without a sandbox.
    public func shell(_ command: String, options: ExecOptions = ExecOptions()) async throws -> ExecResult {
        let sandbox = try await files
        let callId = FlueID.make("shell")
        events.emit(.toolStart(.init(toolName: "bash", toolCallId: callId, args: ["command": .string(command)])))
        let started = ContinuousClock.now
        do {
            let result = try await sandbox.exec(command, options: options)
            events.emit(
                .tool(
                    .init(
                        toolName: "bash", toolCallId: callId, isError: result.exitCode != 0,
                        result: result.stdout + result.stderr, durationMs: started.millisecondsElapsed)))
            return result
        } catch {
            events.emit(
                .tool(
                    .init(
                        toolName: "bash", toolCallId: callId, isError: true, result: "\(error)",
                        durationMs: started.millisecondsElapsed)))
            throw error
        }
    }

    func resolveModel(_ override: ModelSpecifier?, agent: Agent) throws -> (ModelSpecifier, any ModelClient) {
        guard let model = override ?? agent.model ?? models.defaultModel else {
            throw FlueError(
                .modelNotConfigured,
                "no model for agent \(agent.name): pass one to the call, set it on the agent, or set MODEL_SPECIFIER")
        }
        let client = try models.client(for: model)
        return (model, models.price(for: model).map { PricedModelClient(base: client, price: $0) } ?? client)
    }
}
