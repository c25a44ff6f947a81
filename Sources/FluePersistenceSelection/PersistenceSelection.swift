import FluePersistence
import FluePostgres
import FlueSQLite
import Foundation
import Logging

/// Chooses the persistence adapter from the environment, as Flue's `db.ts` does in a project:
/// `DATABASE_URL` set → Postgres; else `SQLITE_PATH` set → SQLite file; else in-memory.
///
/// It lives outside the server so that an application chooses its adapter (and links only the
/// drivers it uses): pass the result to `FlueServer.serve(persistence:)`, or build any
/// `PersistenceAdapter` yourself.
public enum PersistenceSelection {
    /// Throws what the chosen adapter's initializer throws (a malformed `DATABASE_URL`).
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment,
        logger: Logger = Logger(label: "flue.persistence")
    ) throws -> any PersistenceAdapter {
        if let url = environment["DATABASE_URL"], !url.isEmpty {
            return try PostgresPersistence(url: url, logger: logger)
        }
        if let path = environment["SQLITE_PATH"], !path.isEmpty {
            return SQLitePersistence(path: path)
        }
        return InMemoryPersistence()
    }
}
