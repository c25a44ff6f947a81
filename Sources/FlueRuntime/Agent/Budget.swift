/// Limits on what one operation (a prompt, a durable submission) may spend: model turns and
/// tokens (every token a model call reports, input — cache reads and writes included — and
/// output). `nil` fields do not limit.
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

    public init(maxTurns: Int? = nil, maxTokens: Int? = nil) {
        self.maxTurns = maxTurns
        self.maxTokens = maxTokens
    }

    /// No limits.
    public static let unlimited = Budget()

    /// The tighter of two budgets, limit by limit.
    public func tightened(by other: Budget?) -> Budget {
        guard let other else { return self }
        func tighter(_ a: Int?, _ b: Int?) -> Int? {
            switch (a, b) {
            case (let a?, let b?): min(a, b)
            case (let a?, nil): a
            case (nil, let b): b
            }
        }
        return Budget(maxTurns: tighter(maxTurns, other.maxTurns), maxTokens: tighter(maxTokens, other.maxTokens))
    }

    /// What an operation spent before this run of its loop (a host resuming it after an
    /// approval wait or a crash): counted against the limits, and in `budget_exceeded`'s numbers.
    public struct Spent: Sendable, Hashable {
        public var turns: Int
        public var tokens: Int
        public init(turns: Int = 0, tokens: Int = 0) {
            self.turns = turns
            self.tokens = tokens
        }
    }

    /// The limit `turns` and `tokens` reached (`"maxTurns"` or `"maxTokens"`), if any.
    func reached(turns: Int, tokens: Int) -> String? {
        if let maxTurns, turns >= maxTurns { return "maxTurns" }
        if let maxTokens, tokens >= maxTokens { return "maxTokens" }
        return nil
    }
}
