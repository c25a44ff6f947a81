/// When and how an agent's conversations are compacted: older turns summarised by the model so
/// the context sent on each request stays inside the model's window. Set per agent
/// (``Agent/compaction``); subagent profiles have their own.
///
/// Three triggers (the rules follow Flue's `compaction.ts`, with the threshold checked before
/// every model request rather than only after a loop ends, so a long tool loop cannot overflow):
/// - threshold: the estimated context exceeds `contextWindow − reserveTokens`;
/// - overflow: the provider answers `context_window_exceeded`; compacted once, the request is
///   repeated;
/// - manual: ``Session/compact()``.
public struct CompactionPolicy: Sendable, Hashable {
    /// `false` turns threshold and overflow compaction off (``Session/compact()`` still works).
    public var enabled: Bool
    /// The model's context window in tokens; `nil` takes it from ``ModelCatalog`` (unknown
    /// model: no threshold compaction).
    public var contextWindow: Int?
    /// Tokens kept free for the next response and for estimation error; `nil`:
    /// `min(20 000, the model's max output tokens)`, or a third of the window (at least 1 024)
    /// when that would take half of it or more.
    public var reserveTokens: Int?
    /// About this many tokens of the most recent messages stay verbatim (8 000).
    public var keepRecentTokens: Int
    /// The model that writes summaries; `nil`: the session's model.
    public var model: ModelSpecifier?

    public init(
        enabled: Bool = true, contextWindow: Int? = nil, reserveTokens: Int? = nil, keepRecentTokens: Int = 8_000,
        model: ModelSpecifier? = nil
    ) {
        self.enabled = enabled
        self.contextWindow = contextWindow
        self.reserveTokens = reserveTokens
        self.keepRecentTokens = keepRecentTokens
        self.model = model
    }

    /// Compaction with the catalog's window for the model and the default reserve.
    public static let automatic = CompactionPolicy()
    /// No automatic compaction.
    public static let disabled = CompactionPolicy(enabled: false)

    /// The window and reserve that apply to `model`, or `nil` when the window is unknown.
    func threshold(for model: ModelSpecifier) -> Int? {
        guard enabled, let window = knownWindow(for: model), window > 0 else { return nil }
        return max(0, window - reserve(window: window, maxOutput: ModelCatalog.limits(for: model)?.maxOutputTokens))
    }

    /// The reserve for a window (Flue's defaults when not set).
    func reserve(window: Int, maxOutput: Int?) -> Int {
        if let reserveTokens { return max(0, reserveTokens) }
        let reserve = min(20_000, maxOutput ?? 20_000)
        return reserve * 2 >= window ? max(1_024, window / 3) : reserve
    }

    /// Output tokens allowed for a summary: 80% of the reserve and an eighth of the window, at
    /// most 16 000, at least 256 (and never more than the agent's `maxOutputTokens`, applied by
    /// the session). An unknown window counts as 200 000.
    func summaryTokens(for model: ModelSpecifier) -> Int {
        let window = knownWindow(for: model) ?? 200_000
        let reserve = reserve(window: window, maxOutput: ModelCatalog.limits(for: model)?.maxOutputTokens)
        return max(256, min(16_000, reserve / 5 * 4, window / 8))
    }

    /// Characters of transcript one summary request may carry: what fits the window (a token
    /// per 3 characters, to be safe with code and JSON) after the summary's own output and 2 000
    /// tokens of instructions; `nil` when the window is unknown (each message is still capped).
    func transcriptCharacters(for model: ModelSpecifier) -> Int? {
        guard let window = knownWindow(for: model) else { return nil }
        let room = window - summaryTokens(for: model) - 2_000
        return max(4_000, room.multipliedReportingOverflow(by: 3).overflow ? Int.max : room * 3)
    }

    /// The window set here, else the catalog's.
    private func knownWindow(for model: ModelSpecifier) -> Int? {
        contextWindow ?? ModelCatalog.limits(for: model)?.contextWindow
    }
}
