import FluePersistence
import FlueRuntime
import Foundation
import GRDB

/// Submissions in one SQLite file. Every write runs in a write transaction, and SQLite allows
/// one writer at a time, so each compare-and-set is atomic among this file's users.
struct SQLiteSubmissionStore: SubmissionStore {
    let database: DatabasePool

    static let columns = """
        submission_id, sequence, agent, instance_id, session, kind, input, status, accepted_at, attempt_id, owner,
        lease_expires_at, attempt_count, max_attempts, timeout_ms, started_at, input_applied_at, settled_at, result,
        error, journal, cancel_requested_at, stream_offset, approvals, trace_context
        """

    static func record(_ row: Row) -> SubmissionRecord {
        func date(_ column: String) -> Date? { (row[column] as Double?).map(Date.init(unixSeconds:)) }
        func json(_ column: String) -> JSONValue? { (row[column] as String?).flatMap { try? JSONValue(parsing: $0) } }
        return SubmissionRecord(
            submissionId: row["submission_id"], sequence: row["sequence"],
            key: SessionKey(agent: row["agent"], instanceId: row["instance_id"], session: row["session"]),
            kind: SubmissionKind(rawValue: row["kind"]) ?? .direct, input: json("input") ?? .null,
            status: SubmissionStatus(rawValue: row["status"]) ?? .queued, acceptedAt: date("accepted_at") ?? Date(),
            attemptId: row["attempt_id"], owner: row["owner"], leaseExpiresAt: date("lease_expires_at"),
            attemptCount: row["attempt_count"], maxAttempts: row["max_attempts"], timeoutMs: row["timeout_ms"],
            startedAt: date("started_at"), inputAppliedAt: date("input_applied_at"), settledAt: date("settled_at"),
            result: json("result"), error: json("error"),
            journal: (row["journal"] as String?).flatMap { try? JSONDecoder.flue.decode(TurnJournal.self, from: Data($0.utf8)) },
            cancelRequestedAt: date("cancel_requested_at"), streamOffset: row["stream_offset"],
            approvals: ToolApprovalRecord.decode(row["approvals"]), traceContext: TraceContextColumn.decode(row["trace_context"]))
    }

    private static func fetch(_ db: Database, where clause: String, _ arguments: StatementArguments) throws -> [SubmissionRecord] {
        try Row.fetchAll(db, sql: "SELECT \(columns) FROM flue_submissions WHERE \(clause)", arguments: arguments)
            .map(record)
    }

    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await sqliteOperation { try await database.write(body) }
    }

    /// Runs an UPDATE or INSERT and reports whether it changed a row.
    private func changed(_ sql: String, _ arguments: StatementArguments) async throws -> Bool {
        try await write { db in
            try db.execute(sql: sql, arguments: arguments)
            return db.changesCount > 0
        }
    }

    func admit(_ new: NewSubmission) async throws -> Admission {
        try await write { db in
            if let existing = try Self.fetch(db, where: "submission_id = ?", [new.submissionId]).first {
                guard existing.key == new.key, existing.kind == new.kind, existing.input == new.input else {
                    throw SubmissionStoreError.conflict(submissionId: new.submissionId)
                }
                return .existing(existing)
            }
            let deleting = try Bool.fetchOne(
                db, sql: "SELECT 1 FROM flue_session_deletions WHERE agent = ? AND instance_id = ? AND session = ?",
                arguments: [new.key.agent, new.key.instanceId, new.key.session]) ?? false
            guard !deleting else { throw SubmissionStoreError.sessionDeleting(new.key) }
            try db.execute(
                sql: """
                    INSERT INTO flue_submissions
                        (submission_id, agent, instance_id, session, kind, input, status, accepted_at, max_attempts, timeout_ms,
                         stream_offset, trace_context)
                    VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    new.submissionId, new.key.agent, new.key.instanceId, new.key.session, new.kind.rawValue,
                    new.input.jsonString, new.acceptedAt.timeIntervalSince1970, new.maxAttempts, new.timeout.wholeMilliseconds,
                    new.streamOffset, TraceContextColumn.encode(new.traceContext),
                ])
            return .admitted(try Self.fetch(db, where: "submission_id = ?", [new.submissionId])[0])
        }
    }

    func submission(_ submissionId: String) async throws -> SubmissionRecord? {
        try await sqliteOperation {
            try await database.read { db in try Self.fetch(db, where: "submission_id = ?", [submissionId]).first }
        }
    }

    /// A submission of the session that blocks `s` (alias of the outer table) from running.
    private static let blockedByOther = """
        EXISTS (SELECT 1 FROM flue_submissions e
                WHERE e.agent = s.agent AND e.instance_id = s.instance_id AND e.session = s.session
                  AND e.submission_id <> s.submission_id
                  AND (e.status IN ('running', 'awaiting_approval') OR (e.status = 'queued' AND e.sequence < s.sequence)))
        """

    /// `agents` as a JSON array, for `agent IN (SELECT value FROM json_each(?))`.
    private static func agentList(_ agents: Set<String>) -> String { JSONValue.array(agents.sorted().map(JSONValue.string)).jsonString }

    func runnableHeads(agents: Set<String>, limit: Int) async throws -> [SubmissionRecord] {
        try await sqliteOperation {
            try await database.read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT \(Self.columns) FROM flue_submissions s
                        WHERE s.status = 'queued' AND s.agent IN (SELECT value FROM json_each(?)) AND NOT \(Self.blockedByOther)
                        ORDER BY s.sequence LIMIT ?
                        """, arguments: [Self.agentList(agents), limit]
                ).map(Self.record)
            }
        }
    }

    func claim(_ submissionId: String, owner: String, attemptId: String, now: Date, leaseUntil: Date) async throws
        -> SubmissionRecord?
    {
        try await write { db in
            try db.execute(
                sql: """
                    UPDATE flue_submissions AS s
                    SET status = 'running', attempt_id = ?, owner = ?, lease_expires_at = ?,
                        attempt_count = attempt_count + 1, started_at = coalesce(started_at, ?), journal = NULL
                    WHERE s.submission_id = ? AND s.status = 'queued' AND NOT \(Self.blockedByOther)
                    """,
                arguments: [
                    attemptId, owner, leaseUntil.timeIntervalSince1970, now.timeIntervalSince1970, submissionId,
                ])
            guard db.changesCount > 0 else { return nil }
            return try Self.fetch(db, where: "submission_id = ?", [submissionId]).first
        }
    }

    func renewLeases(owner: String, attemptIds: [String], until: Date) async throws {
        guard !attemptIds.isEmpty else { return }
        try await write { db in
            for attemptId in attemptIds {
                try db.execute(
                    sql: "UPDATE flue_submissions SET lease_expires_at = ? WHERE owner = ? AND attempt_id = ? AND status = 'running'",
                    arguments: [until.timeIntervalSince1970, owner, attemptId])
            }
        }
    }

    func markInputApplied(_ submissionId: String, attemptId: String, at: Date) async throws -> Bool {
        try await changed(
            """
            UPDATE flue_submissions SET input_applied_at = coalesce(input_applied_at, ?)
            WHERE submission_id = ? AND attempt_id = ? AND status = 'running'
            """, [at.timeIntervalSince1970, submissionId, attemptId])
    }

    func writeJournal(_ submissionId: String, attemptId: String, _ journal: TurnJournal) async throws -> Bool {
        let text = String(decoding: try JSONEncoder.flue.encode(journal), as: UTF8.self)
        return try await changed(
            "UPDATE flue_submissions SET journal = ? WHERE submission_id = ? AND attempt_id = ? AND status = 'running'",
            [text, submissionId, attemptId])
    }

    func appendStreamChunk(_ submissionId: String, streamKey: String, index: Int, text: String) async throws -> Bool {
        try await changed(
            "INSERT INTO flue_submission_chunks (submission_id, stream_key, idx, text) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [submissionId, streamKey, index, text])
    }

    func streamChunks(_ submissionId: String, streamKey: String) async throws -> [String] {
        try await sqliteOperation {
            try await database.read { db in
                try String.fetchAll(
                    db, sql: "SELECT text FROM flue_submission_chunks WHERE submission_id = ? AND stream_key = ? ORDER BY idx",
                    arguments: [submissionId, streamKey])
            }
        }
    }

    func markAttempt(_ submissionId: String, _ marker: AttemptMarker) async throws -> Bool {
        try await changed(
            "INSERT INTO flue_submission_attempts (submission_id, attempt, owner, at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [submissionId, marker.attempt, marker.owner, marker.at.timeIntervalSince1970])
    }

    func attemptMarkers(_ submissionId: String) async throws -> [AttemptMarker] {
        try await sqliteOperation {
            try await database.read { db in
                try Row.fetchAll(
                    db, sql: "SELECT attempt, owner, at FROM flue_submission_attempts WHERE submission_id = ? ORDER BY attempt",
                    arguments: [submissionId]
                ).map { AttemptMarker(attempt: $0[0], owner: $0[1], at: Date(unixSeconds: $0[2])) }
            }
        }
    }

    func expiredLeases(agents: Set<String>, now: Date, limit: Int) async throws -> [SubmissionRecord] {
        try await sqliteOperation {
            try await database.read { db in
                try Self.fetch(
                    db,
                    where: """
                        status = 'running' AND lease_expires_at < ? AND agent IN (SELECT value FROM json_each(?))
                        ORDER BY sequence LIMIT ?
                        """,
                    [now.timeIntervalSince1970, Self.agentList(agents), limit])
            }
        }
    }

    func takeOver(
        _ submissionId: String, expectedAttemptId: String, owner: String, attemptId: String, now: Date, leaseUntil: Date
    ) async throws -> SubmissionRecord? {
        try await write { db in
            try db.execute(
                sql: """
                    UPDATE flue_submissions
                    SET attempt_id = ?, owner = ?, lease_expires_at = ?, attempt_count = attempt_count + 1
                    WHERE submission_id = ? AND status = 'running' AND attempt_id = ? AND lease_expires_at < ?
                    """,
                arguments: [
                    attemptId, owner, leaseUntil.timeIntervalSince1970, submissionId, expectedAttemptId,
                    now.timeIntervalSince1970,
                ])
            guard db.changesCount > 0 else { return nil }
            return try Self.fetch(db, where: "submission_id = ?", [submissionId]).first
        }
    }

    func requeue(_ submissionId: String, attemptId: String) async throws -> Bool {
        try await changed(
            """
            UPDATE flue_submissions
            SET status = 'queued', attempt_id = NULL, owner = NULL, lease_expires_at = NULL, journal = NULL
            WHERE submission_id = ? AND attempt_id = ? AND status = 'running'
            """, [submissionId, attemptId])
    }

    func releaseLease(_ submissionId: String, attemptId: String, at: Date) async throws -> Bool {
        try await changed(
            "UPDATE flue_submissions SET lease_expires_at = ? WHERE submission_id = ? AND attempt_id = ? AND status = 'running'",
            [at.timeIntervalSince1970, submissionId, attemptId])
    }

    func settle(_ submissionId: String, attemptId: String?, _ outcome: Outcome, at: Date) async throws -> Bool {
        let status = SubmissionStatus.settled(by: outcome).rawValue
        let (result, error): (String?, String?) =
            switch outcome {
            case .completed(let value): (value.jsonString, nil)
            case .failed(let value): (nil, value.jsonString)
            }
        return try await write { db in
            try db.execute(
                sql: """
                    UPDATE flue_submissions
                    SET status = ?, result = ?, error = ?, settled_at = ?, lease_expires_at = NULL
                    WHERE submission_id = ? AND status IN ('queued', 'running') AND (? IS NULL OR attempt_id = ?)
                    """,
                arguments: [status, result, error, at.timeIntervalSince1970, submissionId, attemptId, attemptId])
            guard db.changesCount > 0 else { return false }
            try db.execute(sql: "DELETE FROM flue_submission_chunks WHERE submission_id = ?", arguments: [submissionId])
            return true
        }
    }

    func requestCancel(_ submissionId: String, at: Date) async throws -> CancelRequest? {
        try await write { db in
            guard let record = try Self.fetch(db, where: "submission_id = ?", [submissionId]).first else { return nil }
            switch record.status {
            case .queued, .awaitingApproval:
                try db.execute(
                    sql: """
                        UPDATE flue_submissions SET status = 'aborted', error = ?, settled_at = ?, cancel_requested_at = ?
                        WHERE submission_id = ?
                        """,
                    arguments: [
                        CancelRequest.abortedError.jsonString, at.timeIntervalSince1970, at.timeIntervalSince1970, submissionId,
                    ])
                return .aborted(try Self.fetch(db, where: "submission_id = ?", [submissionId])[0])
            case .running:
                try db.execute(
                    sql: "UPDATE flue_submissions SET cancel_requested_at = coalesce(cancel_requested_at, ?) WHERE submission_id = ?",
                    arguments: [at.timeIntervalSince1970, submissionId])
                return .requested(try Self.fetch(db, where: "submission_id = ?", [submissionId])[0])
            case .completed, .failed, .aborted:
                return .alreadySettled(record)
            }
        }
    }

    func submissions(agent: String, instanceId: String, before: Int64?, limit: Int) async throws -> [SubmissionRecord] {
        try await sqliteOperation {
            try await database.read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT \(Self.columns) FROM flue_submissions
                        WHERE agent = ? AND instance_id = ? AND sequence < ? ORDER BY sequence DESC LIMIT ?
                        """, arguments: [agent, instanceId, before ?? Int64.max, max(limit, 0)]
                ).map(Self.record)
            }
        }
    }

    func awaitApproval(_ submissionId: String, attemptId: String, approvals: [ToolApprovalRecord]) async throws -> Bool {
        try await changed(
            """
            UPDATE flue_submissions
            SET status = 'awaiting_approval', attempt_id = NULL, owner = NULL, lease_expires_at = NULL, started_at = NULL,
                approvals = ?
            WHERE submission_id = ? AND status = 'running' AND attempt_id = ?
            """, [ToolApprovalRecord.encode(approvals), submissionId, attemptId])
    }

    func decideApproval(
        _ submissionId: String, callId: String, decision: ToolApprovalRecord.Decision, reason: String?, at: Date
    ) async throws -> ApprovalDecisionResult? {
        try await write { db in
            guard var record = try Self.fetch(db, where: "submission_id = ?", [submissionId]).first else { return nil }
            let result = record.applyDecision(callId: callId, decision: decision, reason: reason, at: at)
            guard case .decided? = result else { return result }
            try db.execute(
                sql: "UPDATE flue_submissions SET approvals = ?, status = ? WHERE submission_id = ? AND status = 'awaiting_approval'",
                arguments: [ToolApprovalRecord.encode(record.approvals), record.status.rawValue, submissionId])
            return result
        }
    }

    func awaitingApproval(agents: Set<String>, limit: Int) async throws -> [SubmissionRecord] {
        try await sqliteOperation {
            try await database.read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT \(Self.columns) FROM flue_submissions
                        WHERE status = 'awaiting_approval' AND agent IN (SELECT value FROM json_each(?))
                        ORDER BY sequence LIMIT ?
                        """, arguments: [Self.agentList(agents), max(limit, 0)]
                ).map(Self.record)
            }
        }
    }

    func beginSessionDeletion(_ key: SessionKey) async throws -> Bool {
        try await write { db in
            let busy = try Bool.fetchOne(
                db,
                sql: """
                    SELECT 1 FROM flue_submissions WHERE agent = ? AND instance_id = ? AND session = ?
                    AND status IN ('queued', 'running', 'awaiting_approval') LIMIT 1
                    """, arguments: [key.agent, key.instanceId, key.session]) ?? false
            guard !busy else { return false }
            try db.execute(
                sql: """
                    INSERT INTO flue_session_deletions (agent, instance_id, session, started_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT DO NOTHING
                    """, arguments: [key.agent, key.instanceId, key.session, Date().timeIntervalSince1970])
            return true
        }
    }

    func finishSessionDeletion(_ key: SessionKey) async throws {
        try await write { db in
            // The settled submissions with their stream chunks and attempt markers.
            for table in ["flue_submission_chunks", "flue_submission_attempts"] {
                try db.execute(
                    sql: """
                        DELETE FROM \(table) WHERE submission_id IN (
                            SELECT submission_id FROM flue_submissions WHERE agent = ? AND instance_id = ? AND session = ?
                            AND status IN ('completed', 'failed', 'aborted'))
                        """, arguments: [key.agent, key.instanceId, key.session])
            }
            try db.execute(
                sql: """
                    DELETE FROM flue_submissions WHERE agent = ? AND instance_id = ? AND session = ?
                    AND status IN ('completed', 'failed', 'aborted')
                    """, arguments: [key.agent, key.instanceId, key.session])
            try db.execute(
                sql: "DELETE FROM flue_session_deletions WHERE agent = ? AND instance_id = ? AND session = ?",
                arguments: [key.agent, key.instanceId, key.session])
        }
    }

    func openCounts() async throws -> [SubmissionStatus: Int] {
        try await sqliteOperation {
            try await database.read { db in
                var counts: [SubmissionStatus: Int] = [:]
                for row in try Row.fetchAll(
                    db,
                    sql: """
                        SELECT status, count(*) FROM flue_submissions
                        WHERE status IN ('queued', 'running', 'awaiting_approval') GROUP BY status
                        """)
                {
                    if let status = SubmissionStatus(rawValue: row[0]) { counts[status] = row[1] }
                }
                return counts
            }
        }
    }
}
