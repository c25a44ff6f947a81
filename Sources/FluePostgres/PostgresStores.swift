import FluePersistence
import FlueRuntime
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// How long one store operation may take before it fails as `unavailable`: while the database
/// is down, the pool would otherwise keep a request waiting for a connection indefinitely.
let storeOperationTimeout: Duration = .seconds(5)

/// Runs `body` with a deadline; returns or throws as soon as either finishes, even when `body`
/// does not react to cancellation (it is cancelled and left to finish on its own).
func withOperationDeadline<T: Sendable>(
    _ limit: Duration, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let work = Task { try await body() }
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let claim = ClaimOnce()
            let timer = Task {
                guard (try? await Task.sleep(for: limit)) != nil, claim.take() else { return }
                work.cancel()
                continuation.resume(throwing: PersistenceError.unavailable("no answer from Postgres within \(limit)"))
            }
            Task {
                let result = await work.result
                // The timer must not outlive a finished operation (appends run thousands per second).
                timer.cancel()
                if claim.take() { continuation.resume(with: result) }
            }
        }
    } onCancel: {
        work.cancel()
    }
}

/// Lets exactly one of several racers resume a continuation.
final class ClaimOnce: Sendable {
    private let taken = Mutex(false)
    func take() -> Bool {
        taken.withLock { taken in
            defer { taken = true }
            return !taken
        }
    }
}

/// Turns driver failures and missed deadlines into `PersistenceError.unavailable` (HTTP 503);
/// contract errors pass through.
@discardableResult
func storeOperation<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withStoreErrors("Postgres") { try await withOperationDeadline(storeOperationTimeout, body) }
}

extension JSONValue {
    static func fromColumn(_ text: String?) -> JSONValue? {
        text.flatMap { try? JSONValue(parsing: $0) }
    }
}

/// Run records in `flue_runs`.
struct PostgresRunStore: RunStore {
    let client: PostgresClient
    let logger: Logger

    func createRun(_ record: RunRecord) async throws -> Bool {
        try await storeOperation {
            let rows = try await client.query(
                """
                INSERT INTO flue_runs
                    (run_id, workflow_name, status, started_at, payload, owner, heartbeat_at, started_by, trace_context)
                VALUES (\(record.runId), \(record.workflowName), \(record.status.rawValue), \(record.startedAt),
                        \(record.payload?.jsonString), \(record.owner), \(record.heartbeatAt), \(record.startedBy),
                        \(TraceContextColumn.encode(record.traceContext)))
                ON CONFLICT (run_id) DO NOTHING
                RETURNING run_id
                """, logger: logger)
            for try await _ in rows.decode(String.self) { return true }
            return false
        }
    }

    @discardableResult
    func endRun(_ runId: String, _ outcome: Outcome, endedAt: Date, durationMs: Int, usage: Usage?) async throws -> Bool {
        let usageText = try usage.map { String(decoding: try JSONEncoder.flue.encode($0), as: UTF8.self) }
        return try await storeOperation {
            let rows = try await client.query(
                """
                UPDATE flue_runs SET status = \(RunStatus(ending: outcome).rawValue), ended_at = \(endedAt),
                    duration_ms = \(durationMs), is_error = \(outcome.isError),
                    result = \(outcome.result?.jsonString), error = \(outcome.error?.jsonString), usage = \(usageText)
                WHERE run_id = \(runId) AND status = 'active'
                RETURNING run_id
                """, logger: logger)
            for try await _ in rows.decode(String.self) { return true }
            return false
        }
    }

    private static let columns =
        "run_id, workflow_name, status, started_at, payload, ended_at, is_error, duration_ms, result, error, owner, heartbeat_at, cancel_requested_at, started_by, usage, trace_context"

    private func records(_ rows: PostgresRowSequence) async throws -> [RunRecord] {
        var records: [RunRecord] = []
        for try await row in rows.decode(
            (String, String, String, Date, String?, Date?, Bool?, Int?, String?, String?, String?, Date?, Date?, String?, String?,
                String?).self)
        {
            records.append(
                RunRecord(
                    runId: row.0, workflowName: row.1, status: RunStatus(rawValue: row.2) ?? .active, startedAt: row.3,
                    payload: .fromColumn(row.4), endedAt: row.5, isError: row.6, durationMs: row.7,
                    result: .fromColumn(row.8), error: .fromColumn(row.9), owner: row.10, heartbeatAt: row.11,
                    cancelRequestedAt: row.12, startedBy: row.13,
                    usage: row.14.flatMap { try? JSONDecoder.flue.decode(Usage.self, from: Data($0.utf8)) },
                    traceContext: TraceContextColumn.decode(row.15)))
        }
        return records
    }

    func getRun(_ runId: String) async throws -> RunRecord? {
        try await storeOperation {
            try await records(
                client.query("SELECT \(unescaped: Self.columns) FROM flue_runs WHERE run_id = \(runId)", logger: logger)
            ).first
        }
    }

    func listRuns(status: RunStatus?, workflowName: String?, limit: Int, cursor: String?) async throws -> RunPage {
        try await storeOperation {
            let limit = min(max(1, limit), 1000)
            let after = cursor.flatMap(RunListCursor.init(token:))
            let status = status?.rawValue
            let found = try await records(
                client.query(
                    """
                    SELECT \(unescaped: Self.columns) FROM flue_runs
                    WHERE (\(status)::text IS NULL OR status = \(status))
                      AND (\(workflowName)::text IS NULL OR workflow_name = \(workflowName))
                      AND (\(after?.s)::timestamptz IS NULL OR (started_at, run_id) < (\(after?.s), \(after?.r)::text))
                    ORDER BY started_at DESC, run_id DESC
                    LIMIT \(limit + 1)
                    """, logger: logger))
            let page = Array(found.prefix(limit))
            let next = found.count > limit ? page.last.map { RunListCursor(s: $0.startedAt, r: $0.runId).token } : nil
            return RunPage(runs: page.map(\.pointer), nextCursor: next)
        }
    }

    func heartbeatRuns(owner: String, at: Date) async throws {
        try await storeOperation {
            try await client.query(
                "UPDATE flue_runs SET heartbeat_at = \(at) WHERE owner = \(owner) AND status = 'active'", logger: logger)
        }
    }

    func requestCancel(_ runId: String, at: Date) async throws -> RunRecord? {
        try await storeOperation {
            try await records(
                client.query(
                    """
                    WITH marked AS (
                        UPDATE flue_runs SET cancel_requested_at = \(at)
                        WHERE run_id = \(runId) AND status = 'active' AND cancel_requested_at IS NULL
                        RETURNING \(unescaped: Self.columns)
                    )
                    SELECT \(unescaped: Self.columns) FROM marked
                    UNION ALL
                    SELECT \(unescaped: Self.columns) FROM flue_runs WHERE run_id = \(runId) AND NOT EXISTS (SELECT 1 FROM marked)
                    """, logger: logger)
            ).first
        }
    }

    func claimStaleRuns(staleBefore: Date, newOwner: String, now: Date, limit: Int) async throws -> [RunRecord] {
        try await storeOperation {
            try await records(
                client.query(
                    """
                    UPDATE flue_runs SET owner = \(newOwner), heartbeat_at = \(now)
                    WHERE run_id IN (
                        SELECT run_id FROM flue_runs
                        WHERE status = 'active' AND coalesce(heartbeat_at, started_at) < \(staleBefore)
                        ORDER BY started_at LIMIT \(limit)
                        FOR UPDATE SKIP LOCKED)
                    RETURNING \(unescaped: Self.columns)
                    """, logger: logger))
        }
    }
}

/// Event streams in `flue_streams` (sequence counter, closed flag) and `flue_events`.
struct PostgresEventStreamStore: EventStreamStore {
    let client: PostgresClient
    let logger: Logger
    let notifier: StreamNotifier
    let announcer: NotificationAnnouncer

    func createStream(_ path: String) async throws {
        try await storeOperation {
            try await client.query(
                "INSERT INTO flue_streams (path) VALUES (\(path)) ON CONFLICT (path) DO NOTHING", logger: logger)
        }
    }

    /// One statement: bump the counter under the stream's row lock and insert. Other processes
    /// are told after the commit by the announcer, which coalesces paths into few `NOTIFY`s
    /// (a `NOTIFY` inside every append would serialize all commits on Postgres's notify lock).
    @discardableResult
    func append(_ path: String, _ data: Data) async throws -> StreamOffset {
        try await appendBatch(path, [data])
    }

    /// One statement for the whole batch: reserve `count` sequence numbers under the stream's row
    /// lock and insert the events with them, in order.
    @discardableResult
    func appendBatch(_ path: String, _ events: [Data]) async throws -> StreamOffset {
        guard !events.isEmpty else {
            guard let meta = try await meta(path) else { throw EventStreamError.streamNotFound(path) }
            return meta.tail
        }
        let texts = events.map { String(decoding: $0, as: UTF8.self) }
        let count = texts.count
        let sequence: Int64? = try await storeOperation {
            let rows = try await client.query(
                """
                WITH bumped AS (
                    UPDATE flue_streams SET next_seq = next_seq + \(count), updated_at = now()
                    WHERE path = \(path) AND NOT closed
                    RETURNING next_seq - \(count) AS first
                )
                INSERT INTO flue_events (path, seq, data)
                SELECT \(path), bumped.first + event.ordinality - 1, event.data
                FROM bumped, unnest(\(texts)::text[]) WITH ORDINALITY AS event(data, ordinality)
                RETURNING seq
                """, logger: logger)
            var last: Int64?
            for try await seq in rows.decode(Int64.self) { last = max(last ?? seq, seq) }
            return last
        }
        guard let sequence else {
            guard try await meta(path) != nil else { throw EventStreamError.streamNotFound(path) }
            throw EventStreamError.streamClosed(path)
        }
        notifier.signal(path)
        announcer.announce(path)
        return StreamOffset(sequence: sequence)
    }

    func read(_ path: String, after offset: StreamOffset, limit: Int) async throws -> StreamReadResult {
        try await storeOperation {
            // The closed flag is read first: a stream seen closed has no later appends.
            var stream: (closed: Bool, tail: StreamOffset)?
            for try await (flag, next) in try await client.query(
                "SELECT closed, next_seq FROM flue_streams WHERE path = \(path)", logger: logger
            ).decode((Bool, Int64).self) { stream = (flag, StreamOffset(sequence: next - 1)) }
            guard let (closed, tail) = stream else {
                return StreamReadResult(events: [], nextOffset: offset, upToDate: true, closed: false)
            }
            let limit = StreamReadLimit.clamped(limit)
            let probe = limit + 1
            var events: [StoredEvent] = []
            for try await (seq, data) in try await client.query(
                "SELECT seq, data FROM flue_events WHERE path = \(path) AND seq > \(offset.sequence) ORDER BY seq LIMIT \(probe)",
                logger: logger
            ).decode((Int64, String).self) {
                events.append(StoredEvent(offset: StreamOffset(sequence: seq), data: Data(data.utf8)))
            }
            let upToDate = events.count <= limit
            let page = Array(events.prefix(limit))
            // Nothing after `offset`: the reader is at the tail (as of the first query), also when
            // retention removed the events between its offset and the tail.
            return StreamReadResult(
                events: page, nextOffset: page.last?.offset ?? max(offset, tail), upToDate: upToDate, closed: closed)
        }
    }

    func closeStream(_ path: String) async throws {
        let changed: Bool = try await storeOperation {
            let rows = try await client.query(
                """
                WITH updated AS (UPDATE flue_streams SET closed = true WHERE path = \(path) RETURNING path)
                SELECT pg_notify('flue_streams', path) FROM updated
                """, logger: logger)
            for try await _ in rows.decode(String.self) { return true }
            return false
        }
        if changed { notifier.signal(path) }
    }

    func meta(_ path: String) async throws -> StreamMeta? {
        try await storeOperation {
            for try await (next, closed, created) in try await client.query(
                "SELECT next_seq, closed, created_at FROM flue_streams WHERE path = \(path)", logger: logger
            ).decode((Int64, Bool, Date).self) {
                return StreamMeta(tail: StreamOffset(sequence: next - 1), closed: closed, createdAt: created)
            }
            return nil
        }
    }

    func subscribe(_ path: String) -> AsyncStream<Void> {
        notifier.subscribe(path)
    }

    func announce(_ path: String) {
        notifier.signal(path)
        announcer.announce(path)
    }
}

/// Session snapshots in `flue_sessions`, stored as JSON text.
struct PostgresSessionStore: SessionStore {
    let client: PostgresClient
    let logger: Logger

    func loadSession(_ key: SessionKey) async throws -> SessionSnapshot? {
        try await storeOperation {
            for try await text in try await client.query(
                """
                SELECT snapshot FROM flue_sessions
                WHERE agent = \(key.agent) AND instance_id = \(key.instanceId) AND harness = \(key.harness) AND session = \(key.session)
                """, logger: logger
            ).decode(String.self) {
                return try JSONDecoder.flue.decode(SessionSnapshot.self, from: Data(text.utf8))
            }
            return nil
        }
    }

    func saveSession(_ key: SessionKey, _ snapshot: SessionSnapshot) async throws {
        try await storeOperation {
            let text = String(decoding: try JSONEncoder.flue.encode(snapshot), as: UTF8.self)
            try await client.query(
                """
                INSERT INTO flue_sessions (agent, instance_id, harness, session, snapshot, updated_at)
                VALUES (\(key.agent), \(key.instanceId), \(key.harness), \(key.session), \(text), now())
                ON CONFLICT (agent, instance_id, harness, session)
                DO UPDATE SET snapshot = EXCLUDED.snapshot, updated_at = now()
                """, logger: logger)
        }
    }

    func deleteSession(_ key: SessionKey) async throws {
        try await storeOperation {
            try await client.query(
                """
                DELETE FROM flue_sessions
                WHERE agent = \(key.agent) AND instance_id = \(key.instanceId) AND harness = \(key.harness) AND session = \(key.session)
                """, logger: logger)
        }
    }
}
