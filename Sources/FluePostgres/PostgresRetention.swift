import FluePersistence
import Foundation
import Logging
import PostgresNIO

/// Retention in Postgres: each kind is removed by one statement (data-modifying CTEs), so a
/// run never loses its record without its stream, nor a submission its chunks; rows another
/// replica's pass holds are skipped (`SKIP LOCKED`), so replicas may prune at once.
struct PostgresRetention: RetentionStore {
    let client: PostgresClient
    let logger: Logger

    func prune(_ request: RetentionRequest) async throws -> RetentionReport {
        var report = RetentionReport()
        report.runs = try await pruneRuns(request)
        report.agentStreams = try await pruneIdleAgentStreams(request)
        report.submissions = try await pruneSubmissions(request)
        return report
    }

    /// The position (time, then id) at and before which rows lie beyond the newest
    /// `keepAtMost`, compared as a pair so that rows sharing the boundary time are cut exactly;
    /// a position before every row when there is no bound or fewer rows.
    private func countCutoff<ID: PostgresDecodable & Sendable>(
        _ query: (Int) -> PostgresQuery, keepAtMost: Int?, none: ID
    ) async throws -> (Date, ID) {
        guard let keep = keepAtMost else { return (.distantPast, none) }
        let query = query(keep)
        return try await storeOperation {
            for try await position in try await client.query(query, logger: logger).decode((Date, ID).self) {
                return position
            }
            return (.distantPast, none)
        }
    }

    private func pruneRuns(_ request: RetentionRequest) async throws -> Int {
        let (time, id) = try await countCutoff(
            {
                "SELECT ended_at, run_id FROM flue_runs WHERE status <> 'active' ORDER BY ended_at DESC, run_id DESC OFFSET \($0) LIMIT 1"
            }, keepAtMost: request.keepAtMost, none: "")
        return try await storeOperation {
            // The sessions of a removed run's agents use its run id as instance id; an agent
            // instance a client named like a run (it has submissions) keeps its conversation.
            let rows = try await client.query(
                """
                WITH doomed AS (
                    SELECT run_id FROM flue_runs
                    WHERE status <> 'active' AND (ended_at < \(request.olderThan) OR (ended_at, run_id) <= (\(time), \(id)))
                    ORDER BY ended_at, run_id LIMIT \(request.batchLimit)
                    FOR UPDATE SKIP LOCKED
                ), events AS (
                    DELETE FROM flue_events WHERE path IN (SELECT 'runs/' || run_id FROM doomed)
                ), streams AS (
                    DELETE FROM flue_streams WHERE path IN (SELECT 'runs/' || run_id FROM doomed)
                ), sessions AS (
                    DELETE FROM flue_sessions s WHERE s.instance_id IN (SELECT run_id FROM doomed)
                      AND NOT EXISTS (
                          SELECT 1 FROM flue_submissions x WHERE x.agent = s.agent AND x.instance_id = s.instance_id)
                )
                DELETE FROM flue_runs WHERE run_id IN (SELECT run_id FROM doomed) RETURNING run_id
                """, logger: logger)
            var count = 0
            for try await _ in rows.decode(String.self) { count += 1 }
            return count
        }
    }

    /// Locks the idle streams' rows, so an append waits for the deletion and then continues the
    /// sequence; a stream appended to after the cut-off is re-checked under the lock and skipped.
    /// A stream without a last-append time counts as active, and so does an instance with a
    /// submission settled since the cut-off (the settlement time is written by every release, so
    /// events an older replica appended during a rolling deploy are safe too).
    private func pruneIdleAgentStreams(_ request: RetentionRequest) async throws -> Int {
        try await storeOperation {
            let rows = try await client.query(
                """
                WITH idle AS (
                    SELECT f.path FROM flue_streams f
                    WHERE f.path LIKE 'agents/%' AND f.updated_at < \(request.olderThan)
                      AND EXISTS (SELECT 1 FROM flue_events e WHERE e.path = f.path)
                      AND f.path NOT IN (
                          SELECT 'agents/' || s.agent || '/' || s.instance_id FROM flue_submissions s
                          WHERE s.status IN ('queued', 'running', 'awaiting_approval') OR s.settled_at >= \(request.olderThan))
                    LIMIT \(request.batchLimit)
                    FOR UPDATE OF f SKIP LOCKED
                ), gone AS (
                    DELETE FROM flue_events WHERE path IN (SELECT path FROM idle) RETURNING path
                )
                SELECT count(DISTINCT path)::bigint FROM gone
                """, logger: logger)
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }

    private func pruneSubmissions(_ request: RetentionRequest) async throws -> Int {
        let (time, sequence) = try await countCutoff(
            {
                """
                SELECT settled_at, sequence FROM flue_submissions WHERE status IN ('completed', 'failed', 'aborted')
                ORDER BY settled_at DESC, sequence DESC OFFSET \($0) LIMIT 1
                """
            }, keepAtMost: request.keepAtMost, none: Int64.min)
        return try await storeOperation {
            let rows = try await client.query(
                """
                WITH doomed AS (
                    SELECT submission_id FROM flue_submissions
                    WHERE status IN ('completed', 'failed', 'aborted')
                      AND (settled_at < \(request.olderThan) OR (settled_at, sequence) <= (\(time), \(sequence)))
                    ORDER BY settled_at, sequence LIMIT \(request.batchLimit)
                    FOR UPDATE SKIP LOCKED
                ), chunks AS (
                    DELETE FROM flue_submission_chunks WHERE submission_id IN (SELECT submission_id FROM doomed)
                ), attempts AS (
                    DELETE FROM flue_submission_attempts WHERE submission_id IN (SELECT submission_id FROM doomed)
                )
                DELETE FROM flue_submissions WHERE submission_id IN (SELECT submission_id FROM doomed)
                RETURNING submission_id
                """, logger: logger)
            var count = 0
            for try await _ in rows.decode(String.self) { count += 1 }
            return count
        }
    }
}
