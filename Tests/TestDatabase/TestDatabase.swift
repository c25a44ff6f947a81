import FluePostgres
import Foundation
import PostgresNIO

/// Databases for the tests that need Postgres, on the server `TEST_DATABASE_URL` points at.
public enum TestDatabase {
    /// A new database on the test server, so leftovers of one test never meet another.
    public static func fresh() async throws -> String {
        guard let url = ProcessInfo.processInfo.environment["TEST_DATABASE_URL"] else { throw MissingTestDatabase() }
        let parsed = try DatabaseURL(url)
        let client = PostgresClient(configuration: parsed.clientConfiguration)
        let name = "flue_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
            group.cancelAll()
        }
        let parts = url.split(separator: "?", maxSplits: 1)
        let server = parts[0][..<(parts[0].range(of: "/", options: .backwards)?.lowerBound ?? parts[0].endIndex)]
        return "\(server)/\(name)" + (parts.count > 1 ? "?\(parts[1])" : "")
    }
}

/// `TEST_DATABASE_URL` is not set.
public struct MissingTestDatabase: Error, CustomStringConvertible {
    public var description: String { "TEST_DATABASE_URL is not set" }
}
