import Foundation
import Testing

@testable import FlueRuntime

@Suite struct ModelPriceTests {
    @Test func theCatalogPricesAnthropicAndOpenAIModelsByFamily() throws {
        let sonnet = try #require(ModelCatalog.price(for: try ModelSpecifier(parsing: "anthropic/claude-sonnet-4-6")))
        #expect(sonnet == ModelPrice(input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75))
        let snapshot = ModelCatalog.price(for: try ModelSpecifier(parsing: "anthropic/claude-haiku-4-5-20251001"))
        #expect(snapshot == ModelCatalog.prices["claude-haiku-4-5"], "a dated snapshot finds its family")
        #expect(ModelCatalog.price(for: try ModelSpecifier(parsing: "openai/gpt-4.1-mini"))?.input == 0.4, "the longest prefix wins")
        #expect(ModelCatalog.price(for: try ModelSpecifier(parsing: "local/gpt-4.1")) == nil, "a compatible server charges its own")
        #expect(ModelCatalog.price(for: try ModelSpecifier(parsing: "anthropic/claude-next")) == nil)
    }

    @Test func costIsTokensTimesPricePerMillionAndSumsWithUsage() throws {
        let price = ModelPrice(input: 2, output: 8, cacheRead: 0.5)
        #expect(price.cacheWrite == 2, "an unstated cache-write price is the input price")
        let cost = price.cost(of: Usage(input: 500_000, output: 250_000, cacheRead: 2_000_000, cacheWrite: 0))
        #expect(cost == Cost(input: 1, output: 2, cacheRead: 1, cacheWrite: 0))
        #expect(cost.total == 4)
        let priced = Usage(input: 1, output: 1, cost: cost)
        #expect((priced + Usage(input: 1)).cost == cost, "an unpriced turn adds no cost")
        #expect((Usage() + Usage()).cost == nil, "no priced turn, no cost")
        #expect((priced + priced).cost?.total == 8)
        let encoded = try JSONValue(parsing: JSONEncoder.flue.encode(priced))
        #expect(encoded["cost"]?["total"] == 4 && encoded["totalTokens"] == 2)
        #expect(try JSONValue(parsing: JSONEncoder.flue.encode(Usage()))["cost"] == nil)
    }

    @Test func aCostBudgetIsReachedAtItsLimitAndTightensByTheSmaller() {
        let budget = Budget(maxCost: 0.5).tightened(by: Budget(maxTurns: 3, maxCost: 0.25))
        #expect(budget == Budget(maxTurns: 3, maxCost: 0.25))
        #expect(budget.reached(Budget.Spent(turns: 1, tokens: 10, cost: 0.2)) == nil)
        #expect(budget.reached(Budget.Spent(turns: 1, tokens: 10, cost: 0.25))?.limit == "maxCost")
    }
}
