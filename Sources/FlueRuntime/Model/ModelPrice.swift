import Foundation

/// What a model charges, in US dollars per million tokens of each kind (the unit providers'
/// price lists use).
public struct ModelPrice: Sendable, Hashable, Codable {
    public var input: Double
    public var output: Double
    /// Input tokens read from the provider's prompt cache.
    public var cacheRead: Double
    /// Input tokens written to the prompt cache.
    public var cacheWrite: Double

    public init(input: Double, output: Double, cacheRead: Double? = nil, cacheWrite: Double? = nil) {
        self.input = input
        self.output = output
        self.cacheRead = cacheRead ?? input
        self.cacheWrite = cacheWrite ?? input
    }

    /// The cost of `usage`: tokens × price per million, each kind on its own.
    public func cost(of usage: Usage) -> Cost {
        func dollars(_ tokens: Int, _ perMillion: Double) -> Double { Double(tokens) * perMillion / 1_000_000 }
        return Cost(
            input: dollars(usage.input, input), output: dollars(usage.output, output),
            cacheRead: dollars(usage.cacheRead, cacheRead), cacheWrite: dollars(usage.cacheWrite, cacheWrite))
    }
}

/// What a turn (or the turns of an operation, a submission, a run) cost, in US dollars: Flue's
/// `usage.cost` (`{input, output, cacheRead, cacheWrite, total}`).
public struct Cost: Sendable, Hashable, Codable {
    public var input: Double
    public var output: Double
    public var cacheRead: Double
    public var cacheWrite: Double

    public init(input: Double = 0, output: Double = 0, cacheRead: Double = 0, cacheWrite: Double = 0) {
        self.input = input
        self.output = output
        self.cacheRead = cacheRead
        self.cacheWrite = cacheWrite
    }

    /// The sum of the four kinds.
    public var total: Double { input + output + cacheRead + cacheWrite }

    public static func + (lhs: Cost, rhs: Cost) -> Cost {
        Cost(
            input: lhs.input + rhs.input, output: lhs.output + rhs.output, cacheRead: lhs.cacheRead + rhs.cacheRead,
            cacheWrite: lhs.cacheWrite + rhs.cacheWrite)
    }

    enum CodingKeys: String, CodingKey { case input, output, cacheRead, cacheWrite, total }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        input = try c.decodeIfPresent(Double.self, forKey: .input) ?? 0
        output = try c.decodeIfPresent(Double.self, forKey: .output) ?? 0
        cacheRead = try c.decodeIfPresent(Double.self, forKey: .cacheRead) ?? 0
        cacheWrite = try c.decodeIfPresent(Double.self, forKey: .cacheWrite) ?? 0
    }

    /// Encodes each amount rounded to 10^-10 dollars, so sums read `0.002325`, not
    /// `0.0023250000000000002`.
    public func encode(to encoder: any Encoder) throws {
        func rounded(_ dollars: Double) -> Double { (dollars * 1e10).rounded() / 1e10 }
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(rounded(input), forKey: .input)
        try c.encode(rounded(output), forKey: .output)
        try c.encode(rounded(cacheRead), forKey: .cacheRead)
        try c.encode(rounded(cacheWrite), forKey: .cacheWrite)
        try c.encode(rounded(total), forKey: .total)
    }
}

extension ModelResolver {
    /// The catalog's price (``ModelCatalog/price(for:)``); resolvers that let the application
    /// set prices (`ProviderRegistry`) answer theirs first.
    public func price(for model: ModelSpecifier) -> ModelPrice? { ModelCatalog.price(for: model) }
}

/// A client whose answers carry their cost (`usage.cost`), priced at `price`.
struct PricedModelClient: ModelClient {
    let base: any ModelClient
    let price: ModelPrice

    func complete(_ request: ModelRequest, onDelta: @Sendable (ModelStreamDelta) async -> Void) async throws
        -> AssistantMessage
    {
        var message = try await base.complete(request, onDelta: onDelta)
        message.usage.cost = price.cost(of: message.usage)
        return message
    }
}
