import FlueRuntime
import Foundation
import ServiceLifecycle

/// The stores a host works with.
public struct FlueStores: Sendable {
    public var runs: any RunStore
    public var streams: any EventStreamStore
    public var sessions: any SessionStore
    public var submissions: any SubmissionStore
    /// Removes old, finished work (the engine's retention loop calls it). `nil` for an adapter
    /// that does not implement retention: the engine then keeps everything and says so at start.
    public var retention: (any RetentionStore)?

    public init(
        runs: any RunStore, streams: any EventStreamStore, sessions: any SessionStore, submissions: any SubmissionStore,
        retention: (any RetentionStore)? = nil
    ) {
        self.runs = runs
        self.streams = streams
        self.sessions = sessions
        self.submissions = submissions
        self.retention = retention
    }

    /// Everything in process memory: lost on exit, not shared between processes.
    public static func inMemory() -> FlueStores {
        let runs = InMemoryRunStore()
        let streams = InMemoryEventStreamStore()
        let submissions = InMemorySubmissionStore()
        let sessions = InMemorySessionStore()
        return FlueStores(
            runs: runs, streams: streams, sessions: sessions, submissions: submissions,
            retention: InMemoryRetention(runs: runs, streams: streams, sessions: sessions, submissions: submissions))
    }
}

/// A storage backend: in-memory, SQLite or Postgres.
///
/// Boot calls `takeServices()` (the adapter's long-running work, for the application's service
/// group), `migrate()` (creates the schema, records `flue_meta.schema_version`, refuses an
/// unknown or newer version before touching data), then `connect()`; an unreachable database
/// fails there, at boot. `close()` runs last at shutdown, after the HTTP side has closed.
public protocol PersistenceAdapter: Sendable {
    /// A short name for logs (`memory`, `sqlite`, `postgres`).
    var name: String { get }
    /// The connection pools and listeners the adapter owns, as swift-service-lifecycle services
    /// for the application's `ServiceGroup`, listed before the engine and the HTTP server so that
    /// they stop after them (postgres-nio's `PostgresClient` is the model). Whoever takes them
    /// runs them; an adapter whose services nobody took before `connect()` runs them itself until
    /// `close()`. Empty (the default) for an adapter without background work, or once taken.
    func takeServices() -> [any Service]
    func migrate() async throws
    func connect() async throws -> FlueStores
    func close() async throws
    /// Overwrites the recorded schema version: for the contract suite's refusal check only.
    func overwriteSchemaVersion(_ version: Int) async throws
}

extension PersistenceAdapter {
    public var name: String { String(describing: type(of: self)) }
    public func takeServices() -> [any Service] { [] }
}

/// The schema version this build reads and writes. Version 2 added durable agent submissions,
/// version 3 cancellation marks and submission admission offsets, version 4 the run's
/// `startedBy`, version 5 the streams' last-append time for retention; older databases are
/// upgraded in place by `migrate()` (the changes are additive), a newer one is refused.
public enum FlueSchema {
    public static let version = 5

    /// Whether `migrate()` may bring a database at `stored` to ``version``.
    public static func canUpgrade(from stored: Int) -> Bool { (1...version).contains(stored) }
}

/// Storage failures with a stable meaning.
public enum PersistenceError: InfrastructureError, Sendable, Hashable, CustomStringConvertible {
    /// The database records a schema version this build does not know.
    case unsupportedSchemaVersion(stored: Int, supported: Int)
    /// The database cannot be reached or refused the operation.
    case unavailable(String)
    /// `connect()` was called before `migrate()`.
    case notMigrated

    public var description: String {
        switch self {
        case .unsupportedSchemaVersion(let stored, let supported):
            "persisted_schema_version_unsupported: the database has schema version \(stored); this build supports \(supported). Upgrade Flue before using this database."
        case .unavailable(let reason): "the database is unavailable: \(reason)"
        case .notMigrated: "call migrate() before connect()"
        }
    }
}

/// Runs one store operation: contract errors (`EventStreamError`, `PersistenceError`,
/// `SubmissionStoreError`) and
/// cancellation pass through; any driver failure becomes `PersistenceError.unavailable`, which the
/// server answers with `503 store_unavailable`.
public func withStoreErrors<T>(_ backend: String, _ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as EventStreamError {
        throw error
    } catch let error as PersistenceError {
        throw error
    } catch let error as SubmissionStoreError {
        throw error
    } catch is CancellationError {
        throw CancellationError()
    } catch {
        throw PersistenceError.unavailable("\(backend): \(String(reflecting: error))")
    }
}

/// The in-memory adapter: the default.
public final class InMemoryPersistence: PersistenceAdapter {
    public let name = "memory"
    private let stores = FlueStores.inMemory()
    private let storedVersion = LockedValue<Int?>(nil)

    public init() {}

    public func migrate() async throws {
        try storedVersion.withLock { version in
            if let existing = version, !FlueSchema.canUpgrade(from: existing) {
                throw PersistenceError.unsupportedSchemaVersion(stored: existing, supported: FlueSchema.version)
            }
            version = FlueSchema.version
        }
    }

    public func connect() async throws -> FlueStores {
        guard storedVersion.withLock({ $0 }) == FlueSchema.version else { throw PersistenceError.notMigrated }
        return stores
    }

    public func close() async throws {}

    public func overwriteSchemaVersion(_ version: Int) async throws {
        storedVersion.withLock { $0 = version }
    }
}

import Synchronization

/// A value behind a mutex, in a class so it can be shared.
final class LockedValue<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try mutex.withLock { try body(&$0) }
    }
}
