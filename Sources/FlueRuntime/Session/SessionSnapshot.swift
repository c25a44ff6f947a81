import Foundation

/// Everything a session remembers, as one `Codable` value: persistence adapters store it whole.
public struct SessionSnapshot: Sendable, Hashable, Codable {
    /// Format version of this snapshot; bumped on incompatible changes.
    public var version: Int
    /// The conversation, oldest first.
    public var messages: [Message]
    /// Application-owned data kept with the conversation.
    public var metadata: [String: JSONValue]
    public var createdAt: Date
    public var updatedAt: Date
    /// Identified inputs (durable submissions) and where they sit in `messages`, newest last;
    /// the most recent ``appliedInputLimit`` are kept. Absent in snapshots written before it existed.
    public var appliedInputs: [AppliedInput]?
    /// The latest compaction: a summary standing in for the messages before its
    /// ``CompactionRecord/firstKeptIndex`` in what the model is sent (``contextMessages``).
    /// Absent until the session is first compacted (and in snapshots written before it existed).
    public var compaction: CompactionRecord?

    /// An identified input message.
    public struct AppliedInput: Sendable, Hashable, Codable {
        public var id: String
        public var messageIndex: Int
    }

    /// How many identified inputs a snapshot remembers.
    public static let appliedInputLimit = 200

    /// Where the input `id` sits in `messages`, if it was applied.
    public func messageIndex(ofInput id: String) -> Int? {
        appliedInputs?.last(where: { $0.id == id })?.messageIndex
    }

    /// Records that the message at `index` is the input `id`.
    public mutating func recordInput(_ id: String, at index: Int) {
        var inputs = appliedInputs ?? []
        inputs.append(AppliedInput(id: id, messageIndex: index))
        appliedInputs = Array(inputs.suffix(Self.appliedInputLimit))
    }

    /// The snapshot format this build writes.
    public static let currentVersion = 1

    public init(messages: [Message] = [], metadata: [String: JSONValue] = [:], createdAt: Date = Date()) {
        self.version = Self.currentVersion
        self.messages = messages
        self.metadata = metadata
        self.createdAt = createdAt
        self.updatedAt = createdAt
    }
}

/// Identifies a stored session: agent name, instance id, harness and session name. The agent
/// name is part of the key, so two agents addressed with the same id never share history.
public struct SessionKey: Sendable, Hashable, Codable, CustomStringConvertible {
    public var agent: String
    public var instanceId: String
    public var harness: String
    public var session: String

    public init(agent: String, instanceId: String, harness: String = "default", session: String = "default") {
        self.agent = agent
        self.instanceId = instanceId
        self.harness = harness
        self.session = session
    }

    public var description: String { "\(agent)/\(instanceId)/\(harness)/\(session)" }
}

/// Stores session snapshots. The in-memory store is the default; persistence adapters provide
/// durable ones.
public protocol SessionStore: Sendable {
    func loadSession(_ key: SessionKey) async throws -> SessionSnapshot?
    func saveSession(_ key: SessionKey, _ snapshot: SessionSnapshot) async throws
    func deleteSession(_ key: SessionKey) async throws
}

/// Keeps snapshots in process memory; lost when the process exits.
public actor InMemorySessionStore: SessionStore {
    private var snapshots: [SessionKey: SessionSnapshot] = [:]

    public init() {}

    public func loadSession(_ key: SessionKey) -> SessionSnapshot? { snapshots[key] }
    public func saveSession(_ key: SessionKey, _ snapshot: SessionSnapshot) { snapshots[key] = snapshot }
    public func deleteSession(_ key: SessionKey) { snapshots[key] = nil }

    /// Deletes the sessions of the given instance ids (a workflow run's sessions use its run id)
    /// except those `keep` claims.
    public func deleteSessions(ofInstances instanceIds: Set<String>, except keep: @Sendable (SessionKey) -> Bool) {
        guard !instanceIds.isEmpty else { return }
        snapshots = snapshots.filter { !instanceIds.contains($0.key.instanceId) || keep($0.key) }
    }
}
