import FluePersistence
import FluePersistenceTesting
import Testing

@Suite struct InMemoryContractTests {
    @Test(arguments: PersistenceContract.checks + PersistenceContract.storeWideChecks)
    func inMemory(_ check: ContractCheck) async throws {
        try await check.run(on: InMemoryPersistence())
    }
}
