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

                let runsBeyond = try Self.countCutoff(
                    db, "SELECT ended_at FROM flue_runs WHERE status <> 'active' ORDER BY ended_at DESC, run_id DESC LIMIT 1 OFFSET ?",
                    keepAtMost: request.keepAtMost)
                let runIds = try String.fetchAll(
                    db,
                    sql: """
                        SELECT run_id FROM flue_runs WHERE status <> 'active' AND (ended_at < ? OR ended_at <= ?)
                        ORDER BY ended_at, run_id LIMIT ?
                        """, arguments: [cutoff, runsBeyond, limit])
                for runId in runIds {
                    let path = "runs/\(runId)"
                    try db.execute(sql: "DELETE FROM flue_events WHERE path = ?", arguments: [path])
                    try db.execute(sql: "DELETE FROM flue_streams WHERE path = ?", arguments: [path])
                    try db.execute(sql: "DELETE FROM flue_sessions WHERE instance_id = ?", arguments: [runId])
                    try db.execute(sql: "DELETE FROM flue_runs WHERE run_id = ?", arguments: [runId])
                }
                report.runs = runIds.count

                let idle = try String.fetchAll(
                    db,
                    sql: """
                        SELECT f.path FROM flue_streams f
                        WHERE f.path LIKE 'agents/%' AND COALESCE(f.updated_at, f.created_at) < ?
                          AND EXISTS (SELECT 1 FROM flue_events e WHERE e.path = f.path)
                          AND NOT EXISTS (
                              SELECT 1 FROM flue_submissions s
                              WHERE s.status IN ('queued', 'running', 'awaiting_approval')
                                AND 'agents/' || s.agent || '/' || s.instance_id = f.path)
                        LIMIT ?
                        """, arguments: [cutoff, limit])
                for path in idle {
                    try db.execute(sql: "DELETE FROM flue_events WHERE path = ?", arguments: [path])
                }
                report.agentStreams = idle.count

                let submissionsBeyond = try Self.countCutoff(
                    db,
                    """
                    SELECT settled_at FROM flue_submissions WHERE status IN ('completed', 'failed', 'aborted')
                    ORDER BY settled_at DESC, sequence DESC LIMIT 1 OFFSET ?
                    """, keepAtMost: request.keepAtMost)
                let submissionIds = try String.fetchAll(
                    db,
                    sql: """
                        SELECT submission_id FROM flue_submissions
                        WHERE status IN ('completed', 'failed', 'aborted') AND (settled_at < ? OR settled_at <= ?)
                        ORDER BY settled_at, sequence LIMIT ?
                        """, arguments: [cutoff, submissionsBeyond, limit])
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

    /// The time at and before which rows lie beyond the newest `keepAtMost` (`-infinity` when unbounded).
    private static func countCutoff(_ db: Database, _ sql: String, keepAtMost: Int?) throws -> Double {
        guard let keep = keepAtMost else { return -.infinity }
        return try Double.fetchOne(db, sql: sql, arguments: [keep]) ?? -.infinity
    }
}
