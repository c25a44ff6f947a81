import FluePersistence
import Foundation
import GRDB

/// Retention in SQLite: one write transaction per pass (SQLite serializes writers, so an append
/// either precedes the pass and counts as activity, or follows it and continues the sequence).
struct SQLiteRetention: RetentionStore {
    let database: DatabasePool

    func prune(_ request: RetentionRequest) async throws -> RetentionReport {
        try await sqliteOperation {
            try await database.write { db in
                let cutoff = request.olderThan.timeIntervalSince1970
                let limit = request.batchLimit
                var report = RetentionReport()

                let (runTime, runId) = try Self.countCutoff(
                    db,
                    """
                    SELECT ended_at, run_id FROM flue_runs WHERE status <> 'active'
                    ORDER BY ended_at DESC, run_id DESC LIMIT 1 OFFSET ?
                    """, keepAtMost: request.keepAtMost, none: "")
                let runIds = try String.fetchAll(
                    db,
                    sql: """
                        SELECT run_id FROM flue_runs WHERE status <> 'active' AND (ended_at < ? OR (ended_at, run_id) <= (?, ?))
                        ORDER BY ended_at, run_id LIMIT ?
                        """, arguments: [cutoff, runTime, runId, limit])
                for runId in runIds {
                    let path = "runs/\(runId)"
                    try db.execute(sql: "DELETE FROM flue_events WHERE path = ?", arguments: [path])
                    try db.execute(sql: "DELETE FROM flue_streams WHERE path = ?", arguments: [path])
                    // The sessions of the run's agents; an agent instance a client named like the
                    // run (it has submissions) keeps its conversation.
                    try db.execute(
                        sql: """
                            DELETE FROM flue_sessions WHERE instance_id = ? AND NOT EXISTS (
                                SELECT 1 FROM flue_submissions x
                                WHERE x.agent = flue_sessions.agent AND x.instance_id = flue_sessions.instance_id)
                            """, arguments: [runId])
                    try db.execute(sql: "DELETE FROM flue_runs WHERE run_id = ?", arguments: [runId])
                }
                report.runs = runIds.count

                // A stream without a last-append time counts as active, and so does an instance with a
                // submission settled since the cut-off (every release writes settlement times).
                let idle = try String.fetchAll(
                    db,
                    sql: """
                        SELECT f.path FROM flue_streams f
                        WHERE f.path LIKE 'agents/%' AND f.updated_at < ?
                          AND EXISTS (SELECT 1 FROM flue_events e WHERE e.path = f.path)
                          AND f.path NOT IN (
                              SELECT 'agents/' || s.agent || '/' || s.instance_id FROM flue_submissions s
                              WHERE s.status IN ('queued', 'running', 'awaiting_approval') OR s.settled_at >= ?)
                        LIMIT ?
                        """, arguments: [cutoff, cutoff, limit])
                for path in idle {
                    try db.execute(sql: "DELETE FROM flue_events WHERE path = ?", arguments: [path])
                }
                report.agentStreams = idle.count

                let (settledTime, sequence) = try Self.countCutoff(
                    db,
                    """
                    SELECT settled_at, sequence FROM flue_submissions WHERE status IN ('completed', 'failed', 'aborted')
                    ORDER BY settled_at DESC, sequence DESC LIMIT 1 OFFSET ?
                    """, keepAtMost: request.keepAtMost, none: Int64.min)
                let submissionIds = try String.fetchAll(
                    db,
                    sql: """
                        SELECT submission_id FROM flue_submissions
                        WHERE status IN ('completed', 'failed', 'aborted')
                          AND (settled_at < ? OR (settled_at, sequence) <= (?, ?))
                        ORDER BY settled_at, sequence LIMIT ?
                        """, arguments: [cutoff, settledTime, sequence, limit])
                for id in submissionIds {
                    try db.execute(sql: "DELETE FROM flue_submission_chunks WHERE submission_id = ?", arguments: [id])
                    try db.execute(sql: "DELETE FROM flue_submission_attempts WHERE submission_id = ?", arguments: [id])
                    try db.execute(sql: "DELETE FROM flue_submissions WHERE submission_id = ?", arguments: [id])
                }
                report.submissions = submissionIds.count
                return report
            }
        }
    }

    /// The position (time, then id) at and before which rows lie beyond the newest `keepAtMost`,
    /// compared as a pair so that rows sharing the boundary time are cut exactly; a position
    /// before every row when unbounded.
    private static func countCutoff<ID: DatabaseValueConvertible>(
        _ db: Database, _ sql: String, keepAtMost: Int?, none: ID
    ) throws -> (Double, ID) {
        guard let keep = keepAtMost, let row = try Row.fetchOne(db, sql: sql, arguments: [keep]) else {
            return (-.infinity, none)
        }
        return (row[0], row[1])
    }
}
