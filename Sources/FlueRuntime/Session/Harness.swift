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
    private let openSessions = Mutex<[String: Session]>([:])

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
        if let open = openSessions.withLock({ $0[name] }) { return open }
        let key = SessionKey(agent: agent.name, instanceId: instanceId, harness: self.name, session: name)
        let snapshot = try await store.loadSession(key) ?? SessionSnapshot()
        let session = Session(
            name: name, key: key, agent: agent, harness: self, snapshot: snapshot, persisted: true,
            parentSession: nil, taskId: nil, depth: 0)
        return openSessions.withLock { sessions in
            if let raced = sessions[name] { return raced }
            sessions[name] = session
            return session
        }
    }

    /// Deletes a session's stored history; fails with `session_busy` while it runs an operation.
    public func deleteSession(_ name: String) async throws {
        if let open = openSessions.withLock({ $0[name] }) {
            try await open.ensureIdle()
        }
        let key = SessionKey(agent: agent.name, instanceId: instanceId, harness: self.name, session: name)
        try await store.deleteSession(key)
        _ = openSessions.withLock { $0.removeValue(forKey: name) }
    }

    func resolveModel(_ override: ModelSpecifier?, agent: Agent) throws -> (ModelSpecifier, any ModelClient) {
        guard let model = override ?? agent.model ?? models.defaultModel else {
            throw FlueError(
                .modelNotConfigured,
                "no model for agent \(agent.name): pass one to the call, set it on the agent, or set MODEL_SPECIFIER")
        }
        return (model, try models.client(for: model))
    }
}
