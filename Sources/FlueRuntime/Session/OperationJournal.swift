/// Receives an operation's durable progress, in order, so a host can journal it and recover a
/// turn after a crash: what is already in the saved history, which model request was sent,
/// what output streamed, which tool calls started and finished.
///
/// The methods that throw may stop the operation; the agent loop calls them at turn
/// boundaries only (before a model request, after a message is saved), so throwing there is how
/// a host stops work at the next boundary during shutdown or after a timeout.
public protocol OperationJournal: Sendable {
    /// The input message is in the history and saved.
    func inputApplied() async throws
    /// A model request for `turn` (counted from 0 within this operation) is about to be sent.
    /// Called again for the same turn when the provider refused the request as too long and the
    /// history was compacted: the request is repeated (nothing of the refused one streamed).
    func modelRequestStarting(turn: Int) async throws
    /// Streamed text of the turn in flight, in order.
    func streamed(turn: Int, text: String) async
    /// The assistant message of `turn` is in the history and saved.
    func assistantRecorded(turn: Int, _ message: AssistantMessage) async throws
    /// A tool call of `turn` is about to run.
    func toolStarted(turn: Int, _ call: ToolCall) async
    /// A tool call of `turn` finished with `result` (not yet in the history).
    func toolFinished(turn: Int, _ call: ToolCall, result: ToolResultMessage) async
    /// Every tool result of `turn` is in the history and saved.
    func toolResultsRecorded(turn: Int) async throws
}
