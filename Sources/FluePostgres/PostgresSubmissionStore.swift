import FluePersistence
import FlueRuntime
import Foundation
import Logging
import PostgresNIO

/// Submissions in `flue_submissions` with their stream chunks, attempt markers and session
/// deletion marks. Admission takes a per-session advisory lock so that admission order (the
/// `sequence`) equals commit order; claims and every attempt write are single-statement
/// compare-and-sets, atomic across processes.
struct PostgresSubmissionStore: SubmissionStore {
    let client: PostgresClient
    let logger: Logger

    static let columns = """
        submission_id, sequence, agent, instance_id, session, kind, input, status, accepted_at, attempt_id, owner,
        lease_expires_at, attempt_count, max_attempts, timeout_ms, started_at, input_applied_at, settled_at, result,
        error, journal
        """

    static func record(_ row: PostgresRow) throws -> SubmissionRecord {
        let r = row.makeRandomAccess()
        return SubmissionRecord(
            submissionId: try r["submission_id"].decode(String.self),
            sequence: try r["sequence"].decode(Int64.self),
            key: SubmissionSessionKey(
                agent: try r["agent"].decode(String.self), instanceId: try r["instance_id"].decode(String.self),
                session: try r["session"].decode(String.self)),
            kind: SubmissionKind(rawValue: try r["kind"].decode(String.self)) ?? .direct,
            input: .fromColumn(try r["input"].decode(String.self)) ?? .null,
            status: SubmissionStatus(rawValue: try r["status"].decode(String.self)) ?? .queued,
            acceptedAt: try r["accepted_at"].decode(Date.self),
            attemptId: try r["attempt_id"].decode(String?.self),
            owner: try r["owner"].decode(String?.self),
            leaseExpiresAt: try r["lease_expires_at"].decode(Date?.self),
            attemptCount: try r["attempt_count"].decode(Int.self),
            maxAttempts: try r["max_attempts"].decode(Int.self),
            timeoutMs: try r["timeout_ms"].decode(Int.self),
            startedAt: try r["started_at"].decode(Date?.self),
            inputAppliedAt: try r["input_applied_at"].decode(Date?.self),
            settledAt: try r["settled_at"].decode(Date?.self),
            result: .fromColumn(try r["result"].decode(String?.self)),
            error: .fromColumn(try r["error"].decode(String?.self)),
            journal: try r["journal"].decode(String?.self).flatMap {
                try? JSONDecoder.flue.decode(TurnJournal.self, from: Data($0.utf8))
            })
    }

    private func records(_ query: PostgresQuery, on connection: PostgresConnection? = nil) async throws -> [SubmissionRecord] {
        let rows: PostgresRowSequence
        if let connection {
            rows = try await connection.query(query, logger: logger)
        } else {
            rows = try await client.query(query, logger: logger)
        }
        var found: [SubmissionRecord] = []
        for try await row in rows { found.append(try Self.record(row)) }
        return found
    }

    /// Runs a statement and reports whether it touched a row (`RETURNING 1`).
    private func changed(_ query: PostgresQuery) async throws -> Bool {
        try await storeOperation {
            for try await _ in try await client.query(query, logger: logger).decode(Int.self) { return true }
            return false
        }
    }

    /// Admission is one call of `flue_admit_submission` (see the schema), which takes the
    /// session's advisory lock, checks for the id and for a deletion mark, and inserts — then one
    /// read of the row. Two round trips, and admission order is commit order.
    func admit(_ new: NewSubmission) async throws -> Admission {
        try await storeOperation {
            var binds = PostgresBindings()
            binds.append(new.submissionId)
            binds.append(new.key.agent)
            binds.append(new.key.instanceId)
            binds.append(new.key.session)
            binds.append(new.kind.rawValue)
            binds.append(new.input.jsonString)
            binds.append(new.acceptedAt)
            binds.append(new.maxAttempts)
            binds.append(new.timeout.milliseconds)
            var outcome = ""
            for try await text in try await client.query(
                PostgresQuery(
                    unsafeSQL: "SELECT flue_admit_submission($1, $2, $3, $4, $5, $6, $7, $8, $9)", binds: binds),
                logger: logger
            ).decode(String.self) { outcome = text }
            if outcome == "deleting" { throw SubmissionStoreError.sessionDeleting(new.key) }
            guard
                let record = try await records(
                    PostgresQuery(
                        unsafeSQL: "SELECT \(Self.columns) FROM flue_submissions WHERE submission_id = $1",
                        binds: { var b = PostgresBindings(); b.append(new.submissionId); return b }())
                ).first
            else { throw PersistenceError.unavailable("the admitted submission \(new.submissionId) cannot be read") }
            guard outcome == "existing" else { return .admitted(record) }
            guard record.key == new.key, record.kind == new.kind, record.input == new.input else {
                throw SubmissionStoreError.conflict(submissionId: new.submissionId)
            }
            return .existing(record)
        }
    }

    func submission(_ submissionId: String) async throws -> SubmissionRecord? {
        try await storeOperation {
            try await records(
                PostgresQuery(
                    unsafeSQL: "SELECT \(Self.columns) FROM flue_submissions WHERE submission_id = $1",
                    binds: { var b = PostgresBindings(); b.append(submissionId); return b }())
            ).first
        }
    }

    func runnableHeads(agents: Set<String>, limit: Int) async throws -> [SubmissionRecord] {
        try await storeOperation {
            var binds = PostgresBindings()
            binds.append(limit)
            binds.append(agents.sorted())
            return try await records(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT \(Self.columns) FROM (
                            SELECT DISTINCT ON (agent, instance_id, session) *
                            FROM flue_submissions WHERE status IN ('queued', 'running') AND agent = ANY($2::text[])
                            ORDER BY agent, instance_id, session, sequence
                        ) heads
                        WHERE status = 'queued' ORDER BY sequence LIMIT $1
                        """, binds: binds))
        }
    }

    func claim(_ submissionId: String, owner: String, attemptId: String, now: Date, leaseUntil: Date) async throws
        -> SubmissionRecord?
    {
        try await storeOperation {
            var binds = PostgresBindings()
            binds.append(submissionId)
            binds.append(attemptId)
            binds.append(owner)
            binds.append(leaseUntil)
            binds.append(now)
            return try await records(
                PostgresQuery(
                    unsafeSQL: """
                        UPDATE flue_submissions s
                        SET status = 'running', attempt_id = $2, owner = $3, lease_expires_at = $4,
                            attempt_count = attempt_count + 1, started_at = coalesce(started_at, $5), journal = NULL
                        WHERE submission_id = $1 AND status = 'queued'
                          AND NOT EXISTS (
                              SELECT 1 FROM flue_submissions e
                              WHERE e.agent = s.agent AND e.instance_id = s.instance_id AND e.session = s.session
                                AND e.submission_id <> s.submission_id
                                AND (e.status = 'running' OR (e.status = 'queued' AND e.sequence < s.sequence)))
                        RETURNING \(Self.columns)
                        """, binds: binds)
            ).first
        }
    }

    func renewLeases(owner: String, attemptIds: [String], until: Date) async throws {
        guard !attemptIds.isEmpty else { return }
        try await storeOperation {
            try await client.query(
                """
                UPDATE flue_submissions SET lease_expires_at = \(until)
                WHERE owner = \(owner) AND attempt_id = ANY(\(attemptIds)::text[]) AND status = 'running'
                """, logger: logger)
        }
    }

    func markInputApplied(_ submissionId: String, attemptId: String, at: Date) async throws -> Bool {
        try await changed(
            """
            UPDATE flue_submissions SET input_applied_at = coalesce(input_applied_at, \(at))
            WHERE submission_id = \(submissionId) AND attempt_id = \(attemptId) AND status = 'running' RETURNING 1
            """)
    }

    func writeJournal(_ submissionId: String, attemptId: String, _ journal: TurnJournal) async throws -> Bool {
        let text = String(decoding: try JSONEncoder.flue.encode(journal), as: UTF8.self)
        return try await changed(
            """
            UPDATE flue_submissions SET journal = \(text)
            WHERE submission_id = \(submissionId) AND attempt_id = \(attemptId) AND status = 'running' RETURNING 1
            """)
    }

    func appendStreamChunk(_ submissionId: String, streamKey: String, index: Int, text: String) async throws -> Bool {
        try await changed(
            """
            INSERT INTO flue_submission_chunks (submission_id, stream_key, idx, text)
            VALUES (\(submissionId), \(streamKey), \(index), \(text)) ON CONFLICT DO NOTHING RETURNING 1
            """)
    }

    func streamChunks(_ submissionId: String, streamKey: String) async throws -> [String] {
        try await storeOperation {
            var chunks: [String] = []
            for try await text in try await client.query(
                """
                SELECT text FROM flue_submission_chunks
                WHERE submission_id = \(submissionId) AND stream_key = \(streamKey) ORDER BY idx
                """, logger: logger
            ).decode(String.self) { chunks.append(text) }
            return chunks
        }
    }

    func markAttempt(_ submissionId: String, _ marker: AttemptMarker) async throws -> Bool {
        try await changed(
            """
            INSERT INTO flue_submission_attempts (submission_id, attempt, owner, at)
            VALUES (\(submissionId), \(marker.attempt), \(marker.owner), \(marker.at)) ON CONFLICT DO NOTHING RETURNING 1
            """)
    }

    func attemptMarkers(_ submissionId: String) async throws -> [AttemptMarker] {
        try await storeOperation {
            var markers: [AttemptMarker] = []
            for try await (attempt, owner, at) in try await client.query(
                "SELECT attempt, owner, at FROM flue_submission_attempts WHERE submission_id = \(submissionId) ORDER BY attempt",
                logger: logger
            ).decode((Int, String, Date).self) { markers.append(AttemptMarker(attempt: attempt, owner: owner, at: at)) }
            return markers
        }
    }

    func expiredLeases(agents: Set<String>, now: Date, limit: Int) async throws -> [SubmissionRecord] {
        try await storeOperation {
            var binds = PostgresBindings()
            binds.append(now)
            binds.append(limit)
            binds.append(agents.sorted())
            return try await records(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT \(Self.columns) FROM flue_submissions
                        WHERE status = 'running' AND lease_expires_at < $1 AND agent = ANY($3::text[])
                        ORDER BY sequence LIMIT $2
                        """, binds: binds))
        }
    }

    func takeOver(
        _ submissionId: String, expectedAttemptId: String, owner: String, attemptId: String, now: Date, leaseUntil: Date
    ) async throws -> SubmissionRecord? {
        try await storeOperation {
            var binds = PostgresBindings()
            binds.append(submissionId)
            binds.append(expectedAttemptId)
            binds.append(now)
            binds.append(attemptId)
            binds.append(owner)
            binds.append(leaseUntil)
            return try await records(
                PostgresQuery(
                    unsafeSQL: """
                        UPDATE flue_submissions
                        SET attempt_id = $4, owner = $5, lease_expires_at = $6, attempt_count = attempt_count + 1
                        WHERE submission_id = $1 AND status = 'running' AND attempt_id = $2 AND lease_expires_at < $3
                        RETURNING \(Self.columns)
                        """, binds: binds)
            ).first
        }
    }

    func requeue(_ submissionId: String, attemptId: String) async throws -> Bool {
        try await changed(
            """
            UPDATE flue_submissions
            SET status = 'queued', attempt_id = NULL, owner = NULL, lease_expires_at = NULL, journal = NULL
            WHERE submission_id = \(submissionId) AND attempt_id = \(attemptId) AND status = 'running' RETURNING 1
            """)
    }

    func releaseLease(_ submissionId: String, attemptId: String, at: Date) async throws -> Bool {
        try await changed(
            """
            UPDATE flue_submissions SET lease_expires_at = \(at)
            WHERE submission_id = \(submissionId) AND attempt_id = \(attemptId) AND status = 'running' RETURNING 1
            """)
    }

    func settle(_ submissionId: String, attemptId: String?, _ outcome: SubmissionOutcome, at: Date) async throws -> Bool {
        let (status, result, error): (String, String?, String?) =
            switch outcome {
            case .completed(let value): ("completed", value.jsonString, nil)
            case .failed(let value): ("failed", nil, value.jsonString)
            }
        // One statement: settle, and drop the streamed-output segments nobody needs any more.
        return try await changed(
            """
            WITH settled AS (
                UPDATE flue_submissions
                SET status = \(status), result = \(result), error = \(error), settled_at = \(at), lease_expires_at = NULL
                WHERE submission_id = \(submissionId) AND status IN ('queued', 'running')
                  AND (\(attemptId)::text IS NULL OR attempt_id = \(attemptId))
                RETURNING submission_id
            ), dropped AS (
                DELETE FROM flue_submission_chunks WHERE submission_id IN (SELECT submission_id FROM settled)
            )
            SELECT 1 FROM settled
            """)
    }

    func beginSessionDeletion(_ key: SubmissionSessionKey) async throws -> Bool {
        try await storeOperation {
            try await transaction(client, logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(key.description)))", logger: logger)
                for try await _ in try await connection.query(
                    """
                    SELECT 1 FROM flue_submissions
                    WHERE agent = \(key.agent) AND instance_id = \(key.instanceId) AND session = \(key.session)
                      AND status IN ('queued', 'running') LIMIT 1
                    """, logger: logger
                ).decode(Int.self) { return false }
                try await connection.query(
                    """
                    INSERT INTO flue_session_deletions (agent, instance_id, session, started_at)
                    VALUES (\(key.agent), \(key.instanceId), \(key.session), now()) ON CONFLICT DO NOTHING
                    """, logger: logger)
                return true
            }
        }
    }

    func finishSessionDeletion(_ key: SubmissionSessionKey) async throws {
        try await storeOperation {
            try await transaction(client, logger) { connection in
                try await connection.query(
                    """
                    DELETE FROM flue_submissions
                    WHERE agent = \(key.agent) AND instance_id = \(key.instanceId) AND session = \(key.session)
                      AND status IN ('completed', 'failed')
                    """, logger: logger)
                try await connection.query(
                    """
                    DELETE FROM flue_session_deletions
                    WHERE agent = \(key.agent) AND instance_id = \(key.instanceId) AND session = \(key.session)
                    """, logger: logger)
            }
        }
    }
}

/// Runs `body` in a transaction; an error thrown by `body` comes out as itself, not wrapped.
func transaction<T: Sendable>(
    _ client: PostgresClient, _ logger: Logger, _ body: (PostgresConnection) async throws -> T
) async throws -> T {
    do {
        return try await client.withTransaction(logger: logger) { connection in try await body(connection) }
    } catch let error as PostgresTransactionError {
        if let inner = error.closureError { throw inner }
        throw error
    }
}
