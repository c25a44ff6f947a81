import FluePersistence
import FluePersistenceTesting
import FlueSQLite
import Foundation
import Testing

@Suite struct SQLiteContractTests {
    static func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("flue-\(UUID().uuidString).sqlite").path
    }

    /// Every check on a file of its own, so the retention checks may remove what is old.
    @Test(arguments: PersistenceContract.checks + PersistenceContract.storeWideChecks)
    func sqlite(_ check: ContractCheck) async throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await check.run(on: SQLitePersistence(path: path))
    }

    @Test func stateSurvivesReopeningTheFile() async throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let first = SQLitePersistence(path: path)
        try await first.migrate()
        let stores = try await first.connect()
        try await stores.streams.createStream("runs/r1")
        try await stores.streams.append("runs/r1", Data(#"{"n":1}"#.utf8))
        try await first.close()

        let second = SQLitePersistence(path: path)
        try await second.migrate()
        let reopened = try await second.connect()
        let read = try await reopened.streams.read("runs/r1", after: .start, limit: 10)
        #expect(read.events.count == 1)
        #expect(try await reopened.streams.append("runs/r1", Data("{}".utf8)).sequence == 1)
        try await second.close()
    }
}
