import FluePersistence
import FluePostgres
import FlueSQLite
import Foundation
import Logging

/// Chooses the persistence adapter from the environment (the `db.ts` equivalent):
/// `DATABASE_URL` set → Postgres; else `SQLITE_PATH` set → SQLite file; else in-memory.
public enum PersistenceSelection {
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

    /// A short name for logs: `postgres`, `sqlite` or `memory`.
    public static func describe(_ adapter: any PersistenceAdapter) -> String {
        switch adapter {
        case is PostgresPersistence: "postgres"
        case is SQLitePersistence: "sqlite"
        default: "memory"
        }
    }
}
