import FluePersistence
import FlueRuntime
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Postgres persistence: state survives the host and is shared by every replica on the same
/// database. Appends and closes notify other processes (`LISTEN/NOTIFY` on channel
/// `flue_streams`), so live readers on any replica wake up.
///
/// ```swift
/// let persistence = try PostgresPersistence(url: ProcessInfo.processInfo.environment["DATABASE_URL"]!)
/// let services = persistence.takeServices()   // run them in the service group: FlueServer.run(_:persistence:persistenceServices:)
/// try await persistence.migrate()
/// let stores = try await persistence.connect()
/// ```
public final class PostgresPersistence: PersistenceAdapter {
    public let name = "postgres"
    let client: PostgresClient
    let logger: Logger
    let notifier = StreamNotifier()
    private let configuration: PostgresClient.Configuration
    private let target: String
    private let mode = Mutex(Mode.unclaimed)
    let announcer: NotificationAnnouncer

    /// Who runs the connection pool and the notification listener.
    private enum Mode {
        /// Nobody yet.
        case unclaimed
        /// The application, through ``takeServices()`` in its service group.
        case services
        /// The adapter itself, from ``connect()`` until ``close()`` (no service group).
        case standalone(client: Task<Void, Never>, listener: Task<Void, Never>, announcer: Task<Void, Never>)
        case closed
    }

    /// Notification channel for stream changes.
    static let channel = "flue_streams"

    public init(url: String, logger: Logger = Logger(label: "flue.postgres")) throws {
        let parsed = try DatabaseURL(url)
        self.configuration = parsed.clientConfiguration
        let client = PostgresClient(configuration: parsed.clientConfiguration, backgroundLogger: logger)
        self.client = client
        self.logger = logger
        self.announcer = NotificationAnnouncer(client: client, logger: logger)
        self.target = "\(parsed.host):\(parsed.port)/\(parsed.database ?? parsed.username)"
    }

    /// The connection pool (postgres-nio's `PostgresClient`) and the notification service
    /// (`LISTEN` for other processes' appends, coalesced `NOTIFY` for ours), in the order a
    /// service group must list them: before the engine and the HTTP server, so that they stop
    /// after them and the last events' notifications still go out. Empty if already taken, or
    /// once ``connect()`` started them itself.
    public func takeServices() -> [any Service] {
        let taken = mode.withLock { mode -> Bool in
            guard case .unclaimed = mode else { return false }
            mode = .services
            return true
        }
        return taken ? [client, PostgresNotifications(persistence: self)] : []
    }

    /// Creates the schema (idempotent, serialized across processes by an advisory lock) and
    /// records the schema version; refuses a database whose recorded version is not ours.
    /// Fails within a few seconds when the database cannot be reached. Uses a connection of
    /// its own, so it works before the pool runs.
    public func migrate() async throws {
        try await withBootClient { client in
            try await client.withTransaction(logger: self.logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(724011912)", logger: self.logger)
                try await connection.query(
                    "CREATE TABLE IF NOT EXISTS flue_meta (key text PRIMARY KEY, value text NOT NULL)", logger: self.logger)
                let rows = try await connection.query(
                    "SELECT value FROM flue_meta WHERE key = 'schema_version'", logger: self.logger)
                var stored: Int?
                for try await value in rows.decode(String.self) { stored = Int(value) ?? -1 }
                if let stored, !FlueSchema.canUpgrade(from: stored) {
                    throw PersistenceError.unsupportedSchemaVersion(stored: stored, supported: FlueSchema.version)
                }
                for statement in PostgresSchema.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                if stored != FlueSchema.version {
                    // Version 5: streams appended to before it have no last-append time; they
                    // count as appended to now, so retention measures their idleness from here.
                    try await connection.query(
                        "UPDATE flue_streams SET updated_at = now() WHERE updated_at IS NULL", logger: self.logger)
                    let version = String(FlueSchema.version)
                    try await connection.query(
                        """
                        INSERT INTO flue_meta (key, value) VALUES ('schema_version', \(version))
                        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
                        """, logger: self.logger)
                }
            }
        }
    }

    /// Checks the schema version and returns the stores. Their queries run on the pool: in the
    /// application's service group when it took ``takeServices()`` first, otherwise the adapter
    /// starts the pool and the listener here and stops them in ``close()``.
    public func connect() async throws -> FlueStores {
        try await withBootClient { client in
            let rows = try await client.query("SELECT value FROM flue_meta WHERE key = 'schema_version'", logger: self.logger)
            var stored: Int?
            for try await value in rows.decode(String.self) { stored = Int(value) }
            guard stored == FlueSchema.version else { throw PersistenceError.notMigrated }
        }
        mode.withLock { mode in
            guard case .unclaimed = mode else { return }
            let client = self.client
            let announcer = self.announcer
            mode = .standalone(
                client: Task { await client.run() }, listener: Task { await self.listen() },
                announcer: Task { await announcer.run() })
        }
        return FlueStores(
            runs: PostgresRunStore(client: client, logger: logger),
            streams: PostgresEventStreamStore(client: client, logger: logger, notifier: notifier, announcer: announcer),
            sessions: PostgresSessionStore(client: client, logger: logger),
            submissions: PostgresSubmissionStore(client: client, logger: logger),
            retention: PostgresRetention(client: client, logger: logger))
    }

    /// Ends live-read subscriptions; stops the pool and listener if ``connect()`` started them
    /// (the listener first, so queued notifications still go out). Services taken by a service
    /// group stop with the group.
    public func close() async throws {
        let previous = mode.withLock { mode in
            defer { mode = .closed }
            return mode
        }
        if case .standalone(let client, let listener, let announcer) = previous {
            listener.cancel()
            await listener.value
            self.announcer.finish()
            await announcer.value  // not cancelled: it sends what is queued while the pool still runs
            client.cancel()
            await client.value
        }
        notifier.finishAll()
    }

    public func overwriteSchemaVersion(_ version: Int) async throws {
        let text = String(version)
        try await withBootClient { client in
            try await client.query(
                """
                INSERT INTO flue_meta (key, value) VALUES ('schema_version', \(text))
                ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
                """, logger: self.logger)
        }
    }

    /// Runs `body` with a short-lived client of its own (one connection, run for the duration),
    /// failing with `unavailable` after 10 s: boot-time work that must not wait for the pool.
    private func withBootClient(_ body: @escaping @Sendable (PostgresClient) async throws -> Void) async throws {
        var configuration = self.configuration
        configuration.options.maximumConnections = 1
        configuration.options.minimumConnections = 0
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await withDeadline(.seconds(10)) { try await body(client) }
        }
    }

    /// Holds one connection in `LISTEN flue_streams` and turns notifications into local wake-ups.
    /// Reconnects after failures; after every (re)connect all readers re-read, since changes may
    /// have happened while nobody listened. Returns when cancelled.
    func listen() async {
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.channel) { notifications in
                        self.notifier.signalAll()
                        for try await notification in notifications {
                            self.notifier.signal(notification.payload)
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("stream notification listener lost its connection; reconnecting", metadata: ["error": "\(String(reflecting: error))"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// Runs `body` within `limit` (``withOperationDeadline(_:_:)``), naming this database in the
    /// `unavailable` it fails with; contract errors from inside a transaction pass through.
    private func withDeadline(_ limit: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws {
        do {
            try await withOperationDeadline(limit, body)
        } catch let error as PersistenceError {
            if case .unavailable = error {
                throw PersistenceError.unavailable("could not reach Postgres at \(target) within \(limit)")
            }
            throw error
        } catch let error as PostgresTransactionError where error.closureError is PersistenceError {
            throw error.closureError!
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw PersistenceError.unavailable("Postgres at \(target): \(String(reflecting: error))")
        }
    }
}

/// The schema, version 5 (version 1 without the submission tables, version 2 without the
/// cancellation marks and admission offsets, version 4 without the retention column and indexes). Every statement is idempotent.
enum PostgresSchema {
    static let statements = [
        """
        CREATE TABLE IF NOT EXISTS flue_runs (
            run_id text PRIMARY KEY,
            workflow_name text NOT NULL,
            status text NOT NULL,
            started_at timestamptz NOT NULL,
            payload text,
            ended_at timestamptz,
            is_error boolean,
            duration_ms bigint,
            result text,
            error text,
            owner text,
            heartbeat_at timestamptz
        )
        """,
        "CREATE INDEX IF NOT EXISTS flue_runs_newest ON flue_runs (started_at DESC, run_id DESC)",
        "CREATE INDEX IF NOT EXISTS flue_runs_active ON flue_runs (heartbeat_at) WHERE status = 'active'",
        """
        CREATE TABLE IF NOT EXISTS flue_streams (
            path text PRIMARY KEY,
            next_seq bigint NOT NULL DEFAULT 0,
            closed boolean NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS flue_events (
            path text NOT NULL,
            seq bigint NOT NULL,
            data text NOT NULL,
            PRIMARY KEY (path, seq)
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS flue_sessions (
            agent text NOT NULL,
            instance_id text NOT NULL,
            harness text NOT NULL,
            session text NOT NULL,
            snapshot text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (agent, instance_id, harness, session)
        )
        """,
        // Version 2: durable agent submissions.
        """
        CREATE TABLE IF NOT EXISTS flue_submissions (
            submission_id text PRIMARY KEY,
            sequence bigserial NOT NULL,
            agent text NOT NULL,
            instance_id text NOT NULL,
            session text NOT NULL,
            kind text NOT NULL,
            input text NOT NULL,
            status text NOT NULL,
            accepted_at timestamptz NOT NULL,
            attempt_id text,
            owner text,
            lease_expires_at timestamptz,
            attempt_count integer NOT NULL DEFAULT 0,
            max_attempts integer NOT NULL,
            timeout_ms bigint NOT NULL,
            started_at timestamptz,
            input_applied_at timestamptz,
            settled_at timestamptz,
            result text,
            error text,
            journal text
        )
        """,
        "CREATE INDEX IF NOT EXISTS flue_submissions_leases ON flue_submissions (lease_expires_at) WHERE status = 'running'",
        """
        CREATE TABLE IF NOT EXISTS flue_submission_chunks (
            submission_id text NOT NULL,
            stream_key text NOT NULL,
            idx integer NOT NULL,
            text text NOT NULL,
            PRIMARY KEY (submission_id, stream_key, idx)
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS flue_submission_attempts (
            submission_id text NOT NULL,
            attempt integer NOT NULL,
            owner text NOT NULL,
            at timestamptz NOT NULL,
            PRIMARY KEY (submission_id, attempt)
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS flue_session_deletions (
            agent text NOT NULL,
            instance_id text NOT NULL,
            session text NOT NULL,
            started_at timestamptz NOT NULL,
            PRIMARY KEY (agent, instance_id, session)
        )
        """,
        // Version 3: cancellation marks, the admission offset.
        "ALTER TABLE flue_submissions ADD COLUMN IF NOT EXISTS cancel_requested_at timestamptz",
        "ALTER TABLE flue_submissions ADD COLUMN IF NOT EXISTS stream_offset text",
        "ALTER TABLE flue_runs ADD COLUMN IF NOT EXISTS cancel_requested_at timestamptz",
        // Version 3: tool calls awaiting a human decision (a JSON array), and that status in the
        // index of unsettled submissions (the heads of the session queues).
        "ALTER TABLE flue_submissions ADD COLUMN IF NOT EXISTS approvals text",
        // Version 4: the principal that started a run (access control's run ownership).
        "ALTER TABLE flue_runs ADD COLUMN IF NOT EXISTS started_by text",
        """
        CREATE INDEX IF NOT EXISTS flue_submissions_open
        ON flue_submissions (agent, instance_id, session, sequence) WHERE status IN ('queued', 'running', 'awaiting_approval')
        """,
        "DROP INDEX IF EXISTS flue_submissions_unsettled",
        """
        CREATE INDEX IF NOT EXISTS flue_submissions_instance ON flue_submissions (agent, instance_id, sequence DESC)
        """,
        // Version 5: retention. When a stream was last appended to (NULL before version 5: its
        // creation time stands in), and the ended runs and settled submissions by age.
        "ALTER TABLE flue_streams ADD COLUMN IF NOT EXISTS updated_at timestamptz",
        // Version 5: the tokens and cost of a run's model turns (JSON).
        "ALTER TABLE flue_runs ADD COLUMN IF NOT EXISTS usage text",
        // Version 5: the starting request's trace context (JSON), so other processes continue or link to its trace.
        "ALTER TABLE flue_runs ADD COLUMN IF NOT EXISTS trace_context text",
        "ALTER TABLE flue_submissions ADD COLUMN IF NOT EXISTS trace_context text",
        "CREATE INDEX IF NOT EXISTS flue_runs_ended ON flue_runs (ended_at) WHERE status <> 'active'",
        "CREATE INDEX IF NOT EXISTS flue_sessions_instance ON flue_sessions (instance_id)",
        """
        CREATE INDEX IF NOT EXISTS flue_submissions_settled
        ON flue_submissions (settled_at) WHERE status IN ('completed', 'failed', 'aborted')
        """,
        // Admission in one round trip: serialize the session's admissions (and deletions) on an
        // advisory lock held to the end of the calling statement, so admission order (the
        // sequence) is commit order; then refuse a deleting session, or insert unless the id exists.
        """
        CREATE OR REPLACE FUNCTION flue_admit_submission(
            p_id text, p_agent text, p_instance text, p_session text, p_kind text, p_input text,
            p_accepted timestamptz, p_max_attempts bigint, p_timeout_ms bigint, p_offset text, p_trace text
        ) RETURNS text LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtext(p_agent || '/' || p_instance || '/' || p_session));
            IF EXISTS (SELECT 1 FROM flue_submissions WHERE submission_id = p_id) THEN
                RETURN 'existing';
            END IF;
            IF EXISTS (
                SELECT 1 FROM flue_session_deletions
                WHERE agent = p_agent AND instance_id = p_instance AND session = p_session
            ) THEN
                RETURN 'deleting';
            END IF;
            INSERT INTO flue_submissions
                (submission_id, agent, instance_id, session, kind, input, status, accepted_at, max_attempts, timeout_ms,
                 stream_offset, trace_context)
            VALUES (p_id, p_agent, p_instance, p_session, p_kind, p_input, 'queued', p_accepted, p_max_attempts, p_timeout_ms,
                    p_offset, p_trace);
            RETURN 'admitted';
        END
        $$
        """,
        // The earlier signatures (version 3: no trace context; version 2: no offset either), kept
        // for replicas of previous releases during a rolling deploy: their admissions keep working.
        """
        CREATE OR REPLACE FUNCTION flue_admit_submission(
            p_id text, p_agent text, p_instance text, p_session text, p_kind text, p_input text,
            p_accepted timestamptz, p_max_attempts bigint, p_timeout_ms bigint, p_offset text
        ) RETURNS text LANGUAGE sql AS $$
            SELECT flue_admit_submission(
                p_id, p_agent, p_instance, p_session, p_kind, p_input, p_accepted, p_max_attempts, p_timeout_ms, p_offset,
                NULL::text)
        $$
        """,
        """
        CREATE OR REPLACE FUNCTION flue_admit_submission(
            p_id text, p_agent text, p_instance text, p_session text, p_kind text, p_input text,
            p_accepted timestamptz, p_max_attempts bigint, p_timeout_ms bigint
        ) RETURNS text LANGUAGE sql AS $$
            SELECT flue_admit_submission(
                p_id, p_agent, p_instance, p_session, p_kind, p_input, p_accepted, p_max_attempts, p_timeout_ms, NULL::text,
                NULL::text)
        $$
        """,
    ]
}
