import FluePersistence
import FluePersistenceTesting
import FluePostgres
import TestDatabase
import Foundation
import Testing

/// The Postgres under test: `TEST_DATABASE_URL` (CI starts a real server and sets it).
let testDatabaseURL = ProcessInfo.processInfo.environment["TEST_DATABASE_URL"]
/// In CI a missing database is a failure, not a skip.
let runningInCI = ProcessInfo.processInfo.environment["CI"] != nil

@Suite(.serialized, .enabled(if: testDatabaseURL != nil || runningInCI, "set TEST_DATABASE_URL to run against Postgres"))
struct PostgresContractTests {
    @Test(arguments: PersistenceContract.checks)
    func postgres(_ check: ContractCheck) async throws {
        let url = try #require(testDatabaseURL, "TEST_DATABASE_URL is not set")
        try await check.run(on: PostgresPersistence(url: url))
    }

    /// Retention and open counts span the whole store, so each of these checks gets a database of its own.
    @Test(arguments: PersistenceContract.storeWideChecks)
    func storeWide(_ check: ContractCheck) async throws {
        try await check.run(on: PostgresPersistence(url: try await TestDatabase.fresh()))
    }

    @Test func anUnreachableDatabaseFailsAtBootWithAClearMessage() async throws {
        let persistence = try PostgresPersistence(url: "postgresql://flue@127.0.0.1:1/flue")
        let started = ContinuousClock.now
        let error = try await #require(throws: PersistenceError.self) { try await persistence.migrate() }
        #expect(ContinuousClock.now - started < .seconds(20))
        guard case .unavailable(let reason) = error else {
            Issue.record("expected unavailable, got \(error)")
            return
        }
        #expect(reason.contains("127.0.0.1:1"))
        try await persistence.close()
    }

    @Test func databaseURLsAreParsedWithSSLMode() throws {
        let url = try DatabaseURL("postgresql://app:p%40ss@db.internal:6543/flue?sslmode=require")
        #expect(url.host == "db.internal")
        #expect(url.port == 6543)
        #expect(url.username == "app")
        #expect(url.password == "p@ss")
        #expect(url.database == "flue")
        #expect(url.sslMode == "require")
        #expect(try DatabaseURL("postgres://u@h/d").sslMode == "prefer")
        #expect(throws: PersistenceError.self) { try DatabaseURL("mysql://u@h/d") }
        #expect(throws: PersistenceError.self) { try DatabaseURL("postgresql://u@h/d?sslmode=sometimes") }
    }
}
