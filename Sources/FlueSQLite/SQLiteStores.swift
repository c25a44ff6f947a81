import FluePersistence
import FlueRuntime
import Foundation
import GRDB

extension Date {
    init(unixSeconds: Double) { self.init(timeIntervalSince1970: unixSeconds) }
}

struct SQLiteRunStore: RunStore {
    let database: DatabasePool

    func createRun(_ record: RunRecord) async throws -> Bool {
        try await sqliteOperation {
            try await database.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO flue_runs
                            (run_id, workflow_name, status, started_at, payload, owner, heartbeat_at, started_by, trace_context)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING
                        """,
                    arguments: [
                        record.runId, record.workflowName, record.status.rawValue, record.startedAt.timeIntervalSince1970,
                        record.payload?.jsonString, record.owner, record.heartbeatAt?.timeIntervalSince1970, record.startedBy,
                        TraceContextColumn.encode(record.traceContext),
                    ])
                return db.changesCount == 1
            }
        }
    }

    @discardableResult
    func endRun(_ runId: String, _ outcome: Outcome, endedAt: Date, durationMs: Int, usage: Usage?) async throws -> Bool {
        let usageText = try usage.map { String(decoding: try JSONEncoder.flue.encode($0), as: UTF8.self) }
        return try await sqliteOperation {
            try await database.write { db in
                try db.execute(
                    sql: """
                        UPDATE flue_runs SET status = ?, ended_at = ?, duration_ms = ?, is_error = ?, result = ?, error = ?,
                            usage = ?
                        WHERE run_id = ? AND status = 'active'
                        """,
                    arguments: [
                        RunStatus(ending: outcome).rawValue, endedAt.timeIntervalSince1970, durationMs, outcome.isError,
                        outcome.result?.jsonString, outcome.error?.jsonString, usageText, runId,
                    ])
                return db.changesCount == 1
            }
        }
    }

    static let columns =
        "run_id, workflow_name, status, started_at, payload, ended_at, is_error, duration_ms, result, error, owner, heartbeat_at, cancel_requested_at, started_by, usage, trace_context"

    static func record(_ row: Row) -> RunRecord {
        RunRecord(
            runId: row[0], workflowName: row[1], status: RunStatus(rawValue: row[2]) ?? .active,
            startedAt: Date(unixSeconds: row[3]), payload: (row[4] as String?).flatMap { try? JSONValue(parsing: $0) },
            endedAt: (row[5] as Double?).map(Date.init(unixSeconds:)), isError: row[6], durationMs: row[7],
            result: (row[8] as String?).flatMap { try? JSONValue(parsing: $0) },
            error: (row[9] as String?).flatMap { try? JSONValue(parsing: $0) }, owner: row[10],
            heartbeatAt: (row[11] as Double?).map(Date.init(unixSeconds:)),
            cancelRequestedAt: (row[12] as Double?).map(Date.init(unixSeconds:)), startedBy: row[13],
            usage: (row[14] as String?).flatMap { try? JSONDecoder.flue.decode(Usage.self, from: Data($0.utf8)) },
            traceContext: TraceContextColumn.decode(row[15]))
    }

    func requestCancel(_ runId: String, at: Date) async throws -> RunRecord? {
        try await sqliteOperation {
            try await database.write { db in
                try db.execute(
                    sql: """
                        UPDATE flue_runs SET cancel_requested_at = ?
                        WHERE run_id = ? AND status = 'active' AND cancel_requested_at IS NULL
                        """, arguments: [at.timeIntervalSince1970, runId])
                return try Row.fetchOne(db, sql: "SELECT \(Self.columns) FROM flue_runs WHERE run_id = ?", arguments: [runId])
                    .map(Self.record)
            }
        }
    }

    func getRun(_ runId: String) async throws -> RunRecord? {
        try await sqliteOperation {
            try await database.read { db in
                try Row.fetchOne(db, sql: "SELECT \(Self.columns) FROM flue_runs WHERE run_id = ?", arguments: [runId])
                    .map(Self.record)
            }
        }
    }

    func listRuns(status: RunStatus?, workflowName: String?, limit: Int, cursor: String?) async throws -> RunPage {
        try await sqliteOperation {
            let limit = min(max(1, limit), 1000)
            let after = cursor.flatMap(RunListCursor.init(token:))
            let found = try await database.read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT \(Self.columns) FROM flue_runs
                        WHERE (? IS NULL OR status = ?) AND (? IS NULL OR workflow_name = ?)
                          AND (? IS NULL OR started_at < ? OR (started_at = ? AND run_id < ?))
                        ORDER BY started_at DESC, run_id DESC LIMIT ?
                        """,
                    arguments: [
                        status?.rawValue, status?.rawValue, workflowName, workflowName,
                        after?.s.timeIntervalSince1970, after?.s.timeIntervalSince1970, after?.s.timeIntervalSince1970,
                        after?.r, limit + 1,
                    ]
                ).map(Self.record)
            }
            let page = Array(found.prefix(limit))
            let next = found.count > limit ? page.last.map { RunListCursor(s: $0.startedAt, r: $0.runId).token } : nil
            return RunPage(runs: page.map(\.pointer), nextCursor: next)
        }
    }

    func heartbeatRuns(owner: String, at: Date) async throws {
        try await sqliteOperation {
            try await database.write { db in
                try db.execute(
                    sql: "UPDATE flue_runs SET heartbeat_at = ? WHERE owner = ? AND status = 'active'",
                    arguments: [at.timeIntervalSince1970, owner])
            }
        }
    }

    func claimStaleRuns(staleBefore: Date, newOwner: String, now: Date, limit: Int) async throws -> [RunRecord] {
        try await sqliteOperation {
            try await database.write { db in
                let stale = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT \(Self.columns) FROM flue_runs
                        WHERE status = 'active' AND coalesce(heartbeat_at, started_at) < ?
                        ORDER BY started_at LIMIT ?
                        """,
                    arguments: [staleBefore.timeIntervalSince1970, limit]
                ).map(Self.record)
                return try stale.map { record in
                    try db.execute(
                        sql: "UPDATE flue_runs SET owner = ?, heartbeat_at = ? WHERE run_id = ?",
                        arguments: [newOwner, now.timeIntervalSince1970, record.runId])
                    var claimed = record
                    claimed.owner = newOwner
                    claimed.heartbeatAt = now
                    return claimed
                }
            }
        }
    }
}

struct SQLiteEventStreamStore: EventStreamStore {
    let database: DatabasePool
    let notifier: StreamNotifier

    func createStream(_ path: String) async throws {
        try await sqliteOperation {
            try await database.write { db in
                try db.execute(
                    sql: "INSERT INTO flue_streams (path, created_at) VALUES (?, ?) ON CONFLICT (path) DO NOTHING",
                    arguments: [path, Date().timeIntervalSince1970])
            }
        }
    }

    @discardableResult
    func append(_ path: String, _ data: Data) async throws -> StreamOffset {
        try await appendBatch(path, [data])
    }

    /// One write transaction: read the counter, insert the events, bump the counter.
    @discardableResult
    func appendBatch(_ path: String, _ events: [Data]) async throws -> StreamOffset {
        let texts = events.map { String(decoding: $0, as: UTF8.self) }
        let last = try await sqliteOperation {
            try await database.write { db -> Int64 in
                guard let row = try Row.fetchOne(db, sql: "SELECT next_seq, closed FROM flue_streams WHERE path = ?", arguments: [path])
                else { throw EventStreamError.streamNotFound(path) }
                var next: Int64 = row[0]
                let closed: Bool = row[1]
                guard !closed else { throw EventStreamError.streamClosed(path) }
                for text in texts {
                    try db.execute(sql: "INSERT INTO flue_events (path, seq, data) VALUES (?, ?, ?)", arguments: [path, next, text])
                    next += 1
                }
                try db.execute(
                    sql: "UPDATE flue_streams SET next_seq = ?, updated_at = ? WHERE path = ?",
                    arguments: [next, Date().timeIntervalSince1970, path])
                return next - 1
            }
        }
        notifier.signal(path)
        return StreamOffset(sequence: last)
    }

    func read(_ path: String, after offset: StreamOffset, limit: Int) async throws -> StreamReadResult {
        try await sqliteOperation {
            try await database.read { db in
                guard let stream = try Row.fetchOne(db, sql: "SELECT closed, next_seq FROM flue_streams WHERE path = ?", arguments: [path])
                else { return StreamReadResult(events: [], nextOffset: offset, upToDate: true, closed: false) }
                let closed: Bool = stream[0]
                let tail = StreamOffset(sequence: stream[1] as Int64 - 1)
                let limit = StreamReadLimit.clamped(limit)
                let rows = try Row.fetchAll(
                    db, sql: "SELECT seq, data FROM flue_events WHERE path = ? AND seq > ? ORDER BY seq LIMIT ?",
                    arguments: [path, offset.sequence, limit + 1])
                let events = rows.prefix(limit).map { row in
                    StoredEvent(offset: StreamOffset(sequence: row[0]), data: Data((row[1] as String).utf8))
                }
                // Nothing after `offset`: the reader is at the tail, also when retention removed the
                // events between its offset and the tail.
                return StreamReadResult(
                    events: events, nextOffset: events.last?.offset ?? max(offset, tail), upToDate: rows.count <= limit,
                    closed: closed)
            }
        }
    }

    func closeStream(_ path: String) async throws {
        let changed = try await sqliteOperation {
            try await database.write { db in
                try db.execute(sql: "UPDATE flue_streams SET closed = 1 WHERE path = ?", arguments: [path])
                return db.changesCount == 1
            }
        }
        if changed { notifier.signal(path) }
    }

    func meta(_ path: String) async throws -> StreamMeta? {
        try await sqliteOperation {
            try await database.read { db in
                try Row.fetchOne(db, sql: "SELECT next_seq, closed, created_at FROM flue_streams WHERE path = ?", arguments: [path])
                    .map { row in
                        StreamMeta(
                            tail: StreamOffset(sequence: (row[0] as Int64) - 1), closed: row[1],
                            createdAt: Date(unixSeconds: row[2]))
                    }
            }
        }
    }

    func subscribe(_ path: String) -> AsyncStream<Void> {
        notifier.subscribe(path)
    }

    /// One process per file: the local readers are everyone.
    func announce(_ path: String) { notifier.signal(path) }
}

struct SQLiteSessionStore: SessionStore {
    let database: DatabasePool

    func loadSession(_ key: SessionKey) async throws -> SessionSnapshot? {
        try await sqliteOperation {
            let text = try await database.read { db in
                try String.fetchOne(
                    db,
                    sql: "SELECT snapshot FROM flue_sessions WHERE agent = ? AND instance_id = ? AND harness = ? AND session = ?",
                    arguments: [key.agent, key.instanceId, key.harness, key.session])
            }
            return try text.map { try JSONDecoder.flue.decode(SessionSnapshot.self, from: Data($0.utf8)) }
        }
    }

    func saveSession(_ key: SessionKey, _ snapshot: SessionSnapshot) async throws {
        try await sqliteOperation {
            let text = String(decoding: try JSONEncoder.flue.encode(snapshot), as: UTF8.self)
            try await database.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO flue_sessions (agent, instance_id, harness, session, snapshot, updated_at)
                        VALUES (?, ?, ?, ?, ?, ?)
                        ON CONFLICT (agent, instance_id, harness, session)
                        DO UPDATE SET snapshot = excluded.snapshot, updated_at = excluded.updated_at
                        """,
                    arguments: [key.agent, key.instanceId, key.harness, key.session, text, Date().timeIntervalSince1970])
            }
        }
    }

    func deleteSession(_ key: SessionKey) async throws {
        try await sqliteOperation {
            try await database.write { db in
                try db.execute(
                    sql: "DELETE FROM flue_sessions WHERE agent = ? AND instance_id = ? AND harness = ? AND session = ?",
                    arguments: [key.agent, key.instanceId, key.harness, key.session])
            }
        }
    }
}
