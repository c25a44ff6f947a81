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
        error, journal, cancel_requested_at, stream_offset, approvals, trace_context
        """

    static func record(_ row: PostgresRow) throws -> SubmissionRecord {
        let r = row.makeRandomAccess()
        return SubmissionRecord(
            submissionId: try r["submission_id"].decode(String.self),
            sequence: try r["sequence"].decode(Int64.self),
            key: SessionKey(
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
            },
            cancelRequestedAt: try r["cancel_requested_at"].decode(Date?.self),
            streamOffset: try r["stream_offset"].decode(String?.self),
            approvals: ToolApprovalRecord.decode(try r["approvals"].decode(String?.self)),
            traceContext: TraceContextColumn.decode(try r["trace_context"].decode(String?.self)))
    }

    private func records(_ query: PostgresQuery) async throws -> [SubmissionRecord] {
        var found: [SubmissionRecord] = []
        for try await row in try await client.query(query, logger: logger) { found.append(try Self.record(row)) }
        return found
    }

    /// The row of one submission (without the operation deadline: callers add it).
    private func fetch(_ submissionId: String) async throws -> SubmissionRecord? {
        try await records(
            "SELECT \(unescaped: Self.columns) FROM flue_submissions WHERE submission_id = \(submissionId)"
        ).first
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
            var outcome = ""
            for try await text in try await client.query(
                """
                SELECT flue_admit_submission(
                    \(new.submissionId), \(new.key.agent), \(new.key.instanceId), \(new.key.session), \(new.kind.rawValue),
                    \(new.input.jsonString), \(new.acceptedAt), \(new.maxAttempts), \(new.timeout.wholeMilliseconds),
                    \(new.streamOffset), \(TraceContextColumn.encode(new.traceContext)))
                """, logger: logger
            ).decode(String.self) { outcome = text }
            if outcome == "deleting" { throw SubmissionStoreError.sessionDeleting(new.key) }
            guard let record = try await fetch(new.submissionId) else { throw PersistenceError.unavailable("the admitted submission \(new.submissionId) cannot be read") }
            guard outcome == "existing" else { return .admitted(record) }
            guard record.key == new.key, record.kind == new.kind, record.input == new.input else {
                throw SubmissionStoreError.conflict(submissionId: new.submissionId)
            }
            return .existing(record)
        }
    }

    func submission(_ submissionId: String) async throws -> SubmissionRecord? {
        try await storeOperation { try await fetch(submissionId) }
    }

    func runnableHeads(agents: Set<String>, limit: Int) async throws -> [SubmissionRecord] {
        try await storeOperation {
            try await records(
                """
                SELECT \(unescaped: Self.columns) FROM (
                    SELECT DISTINCT ON (agent, instance_id, session) *
                    FROM flue_submissions WHERE status IN ('queued', 'running', 'awaiting_approval') AND agent = ANY(\(agents.sorted())::text[])
                    ORDER BY agent, instance_id, session, sequence
                ) heads
                WHERE status = 'queued' ORDER BY sequence LIMIT \(limit)
                """)
        }
    }

    func claim(_ submissionId: String, owner: String, attemptId: String, now: Date, leaseUntil: Date) async throws
        -> SubmissionRecord?
    {
        try await storeOperation {
            try await records(
                """
                UPDATE flue_submissions s
                SET status = 'running', attempt_id = \(attemptId), owner = \(owner), lease_expires_at = \(leaseUntil),
                    attempt_count = attempt_count + 1, started_at = coalesce(started_at, \(now)), journal = NULL
                WHERE submission_id = \(submissionId) AND status = 'queued'
                  AND NOT EXISTS (
                      SELECT 1 FROM flue_submissions e
                      WHERE e.agent = s.agent AND e.instance_id = s.instance_id AND e.session = s.session
                        AND e.submission_id <> s.submission_id
                        AND (e.status IN ('running', 'awaiting_approval') OR (e.status = 'queued' AND e.sequence < s.sequence)))
                RETURNING \(unescaped: Self.columns)
                """
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
            try await records(
                """
                SELECT \(unescaped: Self.columns) FROM flue_submissions
                WHERE status = 'running' AND lease_expires_at < \(now) AND agent = ANY(\(agents.sorted())::text[])
                ORDER BY sequence LIMIT \(limit)
                """)
        }
    }

    func takeOver(
        _ submissionId: String, expectedAttemptId: String, owner: String, attemptId: String, now: Date, leaseUntil: Date
    ) async throws -> SubmissionRecord? {
        try await storeOperation {
            try await records(
                """
                UPDATE flue_submissions
                SET attempt_id = \(attemptId), owner = \(owner), lease_expires_at = \(leaseUntil),
                    attempt_count = attempt_count + 1
                WHERE submission_id = \(submissionId) AND status = 'running' AND attempt_id = \(expectedAttemptId)
                  AND lease_expires_at < \(now)
                RETURNING \(unescaped: Self.columns)
                """
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

    func settle(_ submissionId: String, attemptId: String?, _ outcome: Outcome, at: Date) async throws -> Bool {
        let status = SubmissionStatus.settled(by: outcome).rawValue
        let (result, error): (String?, String?) =
            switch outcome {
            case .completed(let value): (value.jsonString, nil)
            case .failed(let value): (nil, value.jsonString)
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

    /// One statement: a queued (or awaiting-approval) submission becomes `aborted`, a running one
    /// gets its mark; the returned row tells which (a row back as `aborted` was not running, since
    /// only unsettled rows match). No row: settled already, or unknown.
    func requestCancel(_ submissionId: String, at: Date) async throws -> CancelRequest? {
        try await storeOperation {
            let aborted = CancelRequest.abortedError.jsonString
            if let record = try await records(
                """
                UPDATE flue_submissions SET
                    status = CASE WHEN status = 'running' THEN status ELSE 'aborted' END,
                    error = CASE WHEN status = 'running' THEN error ELSE \(aborted) END,
                    settled_at = CASE WHEN status = 'running' THEN settled_at ELSE \(at) END,
                    cancel_requested_at = coalesce(cancel_requested_at, \(at))
                WHERE submission_id = \(submissionId) AND status IN ('queued', 'running', 'awaiting_approval')
                RETURNING \(unescaped: Self.columns)
                """
            ).first {
                return record.status == .aborted ? .aborted(record) : .requested(record)
            }
            return try await fetch(submissionId).map(CancelRequest.alreadySettled)
        }
    }

    func submissions(agent: String, instanceId: String, before: Int64?, limit: Int) async throws -> [SubmissionRecord] {
        try await storeOperation {
            try await records(
                """
                SELECT \(unescaped: Self.columns) FROM flue_submissions
                WHERE agent = \(agent) AND instance_id = \(instanceId) AND sequence < \(before ?? Int64.max)
                ORDER BY sequence DESC LIMIT \(max(limit, 0))
                """)
        }
    }

    func awaitApproval(_ submissionId: String, attemptId: String, approvals: [ToolApprovalRecord]) async throws -> Bool {
        try await changed(
            """
            UPDATE flue_submissions
            SET status = 'awaiting_approval', attempt_id = NULL, owner = NULL, lease_expires_at = NULL, started_at = NULL,
                approvals = \(ToolApprovalRecord.encode(approvals))
            WHERE submission_id = \(submissionId) AND status = 'running' AND attempt_id = \(attemptId)
            RETURNING 1
            """)
    }

    /// Read, decide and write back under a row lock (`FOR UPDATE`): two deciders of one call
    /// serialize, and the second finds it decided.
    func decideApproval(
        _ submissionId: String, callId: String, decision: ToolApprovalRecord.Decision, reason: String?, at: Date
    ) async throws -> ApprovalDecisionResult? {
        try await storeOperation {
            try await transaction(client, logger) { connection in
                var found: SubmissionRecord?
                for try await row in try await connection.query(
                    """
                    SELECT \(unescaped: Self.columns) FROM flue_submissions WHERE submission_id = \(submissionId) FOR UPDATE
                    """, logger: logger)
                {
                    found = try Self.record(row)
                }
                guard var record = found else { return nil }
                let result = record.applyDecision(callId: callId, decision: decision, reason: reason, at: at)
                guard case .decided? = result else { return result }
                try await connection.query(
                    """
                    UPDATE flue_submissions SET approvals = \(ToolApprovalRecord.encode(record.approvals)),
                        status = \(record.status.rawValue)
                    WHERE submission_id = \(submissionId)
                    """, logger: logger)
                return result
            }
        }
    }

    func awaitingApproval(agents: Set<String>, limit: Int) async throws -> [SubmissionRecord] {
        try await storeOperation {
            try await records(
                """
                SELECT \(unescaped: Self.columns) FROM flue_submissions
                WHERE status = 'awaiting_approval' AND agent = ANY(\(agents.sorted())::text[])
                ORDER BY sequence LIMIT \(max(limit, 0))
                """)
        }
    }

    func beginSessionDeletion(_ key: SessionKey) async throws -> Bool {
        try await storeOperation {
            try await transaction(client, logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(key.submissionPath)))", logger: logger)
                for try await _ in try await connection.query(
                    """
                    SELECT 1 FROM flue_submissions
                    WHERE agent = \(key.agent) AND instance_id = \(key.instanceId) AND session = \(key.session)
                      AND status IN ('queued', 'running', 'awaiting_approval') LIMIT 1
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

    func finishSessionDeletion(_ key: SessionKey) async throws {
        try await storeOperation {
            try await transaction(client, logger) { connection in
                // The settled submissions with their stream chunks and attempt markers.
                try await connection.query(
                    """
                    WITH doomed AS (
                        DELETE FROM flue_submissions
                        WHERE agent = \(key.agent) AND instance_id = \(key.instanceId) AND session = \(key.session)
                          AND status IN ('completed', 'failed', 'aborted')
                        RETURNING submission_id
                    ), chunks AS (
                        DELETE FROM flue_submission_chunks WHERE submission_id IN (SELECT submission_id FROM doomed)
                    )
                    DELETE FROM flue_submission_attempts WHERE submission_id IN (SELECT submission_id FROM doomed)
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

extension PostgresSubmissionStore {
    func openCounts() async throws -> [SubmissionStatus: Int] {
        try await storeOperation {
            var counts: [SubmissionStatus: Int] = [:]
            for try await (status, count) in try await client.query(
                """
                SELECT status, count(*)::bigint FROM flue_submissions
                WHERE status IN ('queued', 'running', 'awaiting_approval') GROUP BY status
                """, logger: logger
            ).decode((String, Int64).self) {
                if let status = SubmissionStatus(rawValue: status) { counts[status] = Int(count) }
            }
            return counts
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
