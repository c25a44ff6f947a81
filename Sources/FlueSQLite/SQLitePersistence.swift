import FluePersistence
import FlueRuntime
import Foundation
import GRDB
import Synchronization

/// SQLite persistence in one file (WAL mode): state survives process restarts on a single host.
/// Live readers in this process are woken directly; other processes are not notified (use
/// Postgres to share state between replicas).
///
/// ```swift
/// let persistence = SQLitePersistence(path: "/var/lib/app/flue.sqlite")
/// ```
public final class SQLitePersistence: PersistenceAdapter {
    public let name = "sqlite"
    public let path: String
    private let pool = Mutex<DatabasePool?>(nil)
    let notifier = StreamNotifier()

    public init(path: String) {
        self.path = path
    }

    private func database() throws -> DatabasePool {
        try pool.withLock { pool in
            if let pool { return pool }
            do {
                var configuration = Configuration()
                configuration.busyMode = .timeout(10)
                let opened = try DatabasePool(path: path, configuration: configuration)
                pool = opened
                return opened
            } catch {
                throw FluePersistence.PersistenceError.unavailable("cannot open SQLite database at \(path): \(error)")
            }
        }
    }

    /// Creates the schema and records the version; refuses a file with another version before
    /// touching its data.
    public func migrate() async throws {
        let database = try database()
        try await sqliteOperation {
            try await database.write { db in
                try db.execute(sql: "CREATE TABLE IF NOT EXISTS flue_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                let stored = try String.fetchOne(db, sql: "SELECT value FROM flue_meta WHERE key = 'schema_version'")
                if let stored, !FlueSchema.canUpgrade(from: Int(stored) ?? -1) {
                    throw FluePersistence.PersistenceError.unsupportedSchemaVersion(stored: Int(stored) ?? -1, supported: FlueSchema.version)
                }
                for statement in SQLiteSchema.statements { try db.execute(sql: statement) }
                for (table, column, type) in SQLiteSchema.addedColumns
                where try !db.columns(in: table).contains(where: { $0.name == column }) {
                    try db.execute(sql: "ALTER TABLE \(table) ADD COLUMN \(column) \(type)")
                }
                if stored.flatMap(Int.init) != FlueSchema.version {
                    // Version 5: streams appended to before it count as appended to now.
                    try db.execute(
                        sql: "UPDATE flue_streams SET updated_at = ? WHERE updated_at IS NULL",
                        arguments: [Date().timeIntervalSince1970])
                    try db.execute(
                        sql: """
                            INSERT INTO flue_meta (key, value) VALUES ('schema_version', ?)
                            ON CONFLICT (key) DO UPDATE SET value = excluded.value
                            """,
                        arguments: [String(FlueSchema.version)])
                }
            }
        }
    }

    public func connect() async throws -> FlueStores {
        let database = try database()
        let version = try await sqliteOperation {
            try await database.read { db in
                try String.fetchOne(db, sql: "SELECT value FROM flue_meta WHERE key = 'schema_version'")
            }
        }
        guard version.flatMap(Int.init) == FlueSchema.version else { throw FluePersistence.PersistenceError.notMigrated }
        return FlueStores(
            runs: SQLiteRunStore(database: database),
            streams: SQLiteEventStreamStore(database: database, notifier: notifier),
            sessions: SQLiteSessionStore(database: database),
            submissions: SQLiteSubmissionStore(database: database),
            retention: SQLiteRetention(database: database))
    }

    public func close() async throws {
        notifier.finishAll()
        let closing = pool.withLock { pool in
            defer { pool = nil }
            return pool
        }
        try closing?.close()
    }

    public func overwriteSchemaVersion(_ version: Int) async throws {
        let database = try database()
        try await database.write { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS flue_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            try db.execute(
                sql: "INSERT INTO flue_meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                arguments: [String(version)])
        }
    }
}

/// The schema, version 5 (version 1 without the submission tables, version 2 without
/// ``addedColumns``). Dates are Unix seconds (REAL).
enum SQLiteSchema {
    /// Version 3: cancellation marks, the submission's admission offset and its tool approvals. SQLite has no
    /// `ADD COLUMN IF NOT EXISTS`, so `migrate()` adds what `PRAGMA table_info` lacks.
    static let addedColumns: [(table: String, column: String, type: String)] = [
        ("flue_submissions", "cancel_requested_at", "REAL"),
        ("flue_submissions", "stream_offset", "TEXT"),
        ("flue_runs", "cancel_requested_at", "REAL"),
        ("flue_submissions", "approvals", "TEXT"),
        // Version 4: the principal that started a run.
        ("flue_runs", "started_by", "TEXT"),
        // Version 5: when a stream was last appended to (NULL before: its creation time stands in).
        ("flue_streams", "updated_at", "REAL"),
        // Version 5: the tokens and cost of a run's model turns (JSON).
        ("flue_runs", "usage", "TEXT"),
        // Version 5: the starting request's trace context (JSON).
        ("flue_runs", "trace_context", "TEXT"),
        ("flue_submissions", "trace_context", "TEXT"),
    ]

    static let statements = [
        """
        CREATE TABLE IF NOT EXISTS flue_runs (
            run_id TEXT PRIMARY KEY, workflow_name TEXT NOT NULL, status TEXT NOT NULL, started_at REAL NOT NULL,
            payload TEXT, ended_at REAL, is_error INTEGER, duration_ms INTEGER, result TEXT, error TEXT,
            owner TEXT, heartbeat_at REAL)
        """,
        "CREATE INDEX IF NOT EXISTS flue_runs_newest ON flue_runs (started_at DESC, run_id DESC)",
        """
        CREATE TABLE IF NOT EXISTS flue_streams (
            path TEXT PRIMARY KEY, next_seq INTEGER NOT NULL DEFAULT 0, closed INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS flue_events (
            path TEXT NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (path, seq)) WITHOUT ROWID
        """,
        """
        CREATE TABLE IF NOT EXISTS flue_sessions (
            agent TEXT NOT NULL, instance_id TEXT NOT NULL, harness TEXT NOT NULL, session TEXT NOT NULL,
            snapshot TEXT NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (agent, instance_id, harness, session))
        """,
        // Version 2: durable agent submissions.
        """
        CREATE TABLE IF NOT EXISTS flue_submissions (
            sequence INTEGER PRIMARY KEY AUTOINCREMENT, submission_id TEXT NOT NULL UNIQUE, agent TEXT NOT NULL,
            instance_id TEXT NOT NULL, session TEXT NOT NULL, kind TEXT NOT NULL, input TEXT NOT NULL, status TEXT NOT NULL,
            accepted_at REAL NOT NULL, attempt_id TEXT, owner TEXT, lease_expires_at REAL,
            attempt_count INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL, timeout_ms INTEGER NOT NULL,
            started_at REAL, input_applied_at REAL, settled_at REAL, result TEXT, error TEXT, journal TEXT)
        """,
        """
        CREATE INDEX IF NOT EXISTS flue_submissions_unsettled
        ON flue_submissions (agent, instance_id, session, sequence) WHERE status IN ('queued', 'running')
        """,
        "CREATE INDEX IF NOT EXISTS flue_submissions_instance ON flue_submissions (agent, instance_id, sequence)",
        """
        CREATE TABLE IF NOT EXISTS flue_submission_chunks (
            submission_id TEXT NOT NULL, stream_key TEXT NOT NULL, idx INTEGER NOT NULL, text TEXT NOT NULL,
            PRIMARY KEY (submission_id, stream_key, idx)) WITHOUT ROWID
        """,
        """
        CREATE TABLE IF NOT EXISTS flue_submission_attempts (
            submission_id TEXT NOT NULL, attempt INTEGER NOT NULL, owner TEXT NOT NULL, at REAL NOT NULL,
            PRIMARY KEY (submission_id, attempt)) WITHOUT ROWID
        """,
        """
        CREATE TABLE IF NOT EXISTS flue_session_deletions (
            agent TEXT NOT NULL, instance_id TEXT NOT NULL, session TEXT NOT NULL, started_at REAL NOT NULL,
            PRIMARY KEY (agent, instance_id, session))
        """,
        // Version 5: retention finds ended runs and settled submissions by age.
        "CREATE INDEX IF NOT EXISTS flue_runs_ended ON flue_runs (ended_at) WHERE status <> 'active'",
        "CREATE INDEX IF NOT EXISTS flue_sessions_instance ON flue_sessions (instance_id)",
        """
        CREATE INDEX IF NOT EXISTS flue_submissions_settled
        ON flue_submissions (settled_at) WHERE status IN ('completed', 'failed', 'aborted')
        """,
    ]
}

/// Driver failures become `PersistenceError.unavailable`; contract errors pass through.
func sqliteOperation<T>(_ body: () async throws -> T) async throws -> T {
    try await withStoreErrors("SQLite", body)
}
