/// Limits on what one operation (a prompt, a durable submission) may spend: model turns,
/// tokens (every token a model call reports, input — cache reads and writes included — and
/// output) and cost in US dollars (`usage.cost`; turns of unpriced models count nothing).
/// `nil` fields do not limit.
///
/// The loop checks the budget after each turn: when a limit is reached and the model asked
/// for more (it called tools), the operation fails with `budget_exceeded` once that turn's tool
/// results are recorded (the history stays valid). A turn that gives the final answer completes
/// the operation even if it crossed a limit: its tokens are spent already.
public struct Budget: Sendable, Hashable, Codable {
    /// Model turns, at least 1.
    public var maxTurns: Int?
    /// Tokens over all model calls of the operation, at least 1.
    public var maxTokens: Int?
    /// US dollars over all model calls of the operation (``Cost/total``), more than 0.
    public var maxCost: Double?

    public init(maxTurns: Int? = nil, maxTokens: Int? = nil, maxCost: Double? = nil) {
        self.maxTurns = maxTurns
        self.maxTokens = maxTokens
        self.maxCost = maxCost
    }

    /// No limits.
    public static let unlimited = Budget()

    /// The tighter of two budgets, limit by limit.
    public func tightened(by other: Budget?) -> Budget {
        guard let other else { return self }
        func tighter<Limit: Comparable>(_ a: Limit?, _ b: Limit?) -> Limit? {
            switch (a, b) {
            case (let a?, let b?): min(a, b)
            case (let a?, nil): a
            case (nil, let b): b
            }
        }
        return Budget(
            maxTurns: tighter(maxTurns, other.maxTurns), maxTokens: tighter(maxTokens, other.maxTokens),
            maxCost: tighter(maxCost, other.maxCost))
    }

    /// What an operation spent before this run of its loop (a host resuming it after an
    /// approval wait or a crash): counted against the limits, and in `budget_exceeded`'s numbers.
    public struct Spent: Sendable, Hashable {
        public var turns: Int
        public var tokens: Int
        /// US dollars.
        public var cost: Double
        public init(turns: Int = 0, tokens: Int = 0, cost: Double = 0) {
            self.turns = turns
            self.tokens = tokens
            self.cost = cost
        }
    }

    /// The limit `spent` reached, with its allowed and used amounts, if any.
    func reached(_ spent: Spent) -> (limit: String, allowed: JSONValue, used: JSONValue)? {
        if let maxTurns, spent.turns >= maxTurns { return ("maxTurns", .int(maxTurns), .int(spent.turns)) }
        if let maxTokens, spent.tokens >= maxTokens { return ("maxTokens", .int(maxTokens), .int(spent.tokens)) }
        if let maxCost, spent.cost >= maxCost { return ("maxCost", .double(maxCost), .double(spent.cost)) }
        return nil
    }
}
