import FluePersistence
import FlueRuntime
import Foundation

/// What to do with a running submission whose owner stopped renewing its lease. The rules are
/// conservative: work is repeated only where repeating it has no side effects.
enum RecoveryDecision: Sendable, Equatable {
    /// The input never reached the history: queue it again.
    case requeue
    /// The history already holds the final answer: settle with it.
    case complete(JSONValue)
    /// Settle as failed.
    case fail(FlueError)
    /// Continue the conversation in a new attempt, after appending `repair` to the history.
    case resume(repair: [Message], reason: String)
    /// A cancel was asked for: append `repair` (results for unfinished tool calls) and settle `aborted`.
    case abort(repair: [Message])

    /// The decision's name, for metrics: `requeue`, `complete`, `fail`, `resume`, `abort`.
    var name: String {
        switch self {
        case .requeue: "requeue"
        case .complete: "complete"
        case .fail: "fail"
        case .resume: "resume"
        case .abort: "abort"
        }
    }
}

enum SubmissionRecovery {
    /// Decides from the stored record, the session history and (for a model turn that was
    /// streaming) the saved output segments.
    ///
    /// In order: input absent → requeue (or fail once attempts are used up); final answer after
    /// the input → completed (even past the budget); attempts used up → `submission_retry_exhausted`;
    /// past the timeout → `submission_timeout`; otherwise resume: a tool batch without results
    /// gets the recorded result of each finished call and an "interrupted, outcome unknown"
    /// error for every other call (never run again); a turn that streamed output gets that
    /// partial output and a note to continue; a model request that produced nothing is simply
    /// repeated (model requests have no side effects).
    static func decide(
        _ record: SubmissionRecord, history: SessionSnapshot?, partialOutput: [String], now: Date
    ) -> RecoveryDecision {
        let messages = history?.messages ?? []
        if record.cancelRequestedAt != nil {
            return .abort(repair: cancellationRepair(record, history: history, partialOutput: partialOutput))
        }
        guard let inputIndex = history?.messageIndex(ofInput: record.submissionId), inputIndex < messages.count else {
            if record.attemptCount > record.maxAttempts {
                return .fail(
                    FlueError(
                        .submissionInterrupted, "the submission was interrupted before its input was applied, and has no attempts left",
                        details: [
                            "phase": "retry_exhausted_before_input", "attemptCount": .int(record.attemptCount),
                            "maxAttempts": .int(record.maxAttempts),
                        ]))
            }
            return .requeue
        }
        let after = messages[(inputIndex + 1)...]
        if case .assistant(let last)? = after.last, last.toolCalls.isEmpty {
            return .complete(response(after: after, final: last))
        }
        if record.attemptCount > record.maxAttempts {
            return .fail(
                FlueError(
                    .submissionRetryExhausted, "the submission was interrupted \(record.attemptCount - 1) times and has no attempts left",
                    details: ["attemptCount": .int(record.attemptCount), "maxAttempts": .int(record.maxAttempts)]))
        }
        if let timeoutAt = record.timeoutAt, now > timeoutAt {
            return .fail(
                FlueError(
                    .submissionTimeout, "the submission ran past its timeout before recovery",
                    details: ["timeoutAt": .string(FlueEvent.formatTimestamp(timeoutAt))]))
        }
        if case .assistant(let pendingCalls)? = after.last {
            let (results, interrupted) = toolResults(for: pendingCalls, journal: record.journal, interrupted: interruptedByStop)
            let reason =
                interrupted.isEmpty
                ? "tool results restored from the journal"
                : "tool calls with unknown outcome reported as interrupted: \(interrupted.joined(separator: ", "))"
            return .resume(repair: results, reason: reason)
        }
        let partial = partialOutput.joined()
        if record.journal?.phase == .modelRequestStarted, !partial.isEmpty {
            let model = ModelSpecifier(provider: "recovered", model: "partial")
            return .resume(
                repair: [
                    .assistant(AssistantMessage(content: [.text(partial)], stopReason: .aborted, usage: Usage(), model: model)),
                    .user(
                        text: "[Your previous reply was interrupted after the text above. Continue exactly where it "
                            + "stopped, without repeating it.]", images: []),
                ], reason: "resumed from \(partial.count) characters of saved partial output")
        }
        return .resume(repair: [], reason: "the model request is repeated: no output of it was saved")
    }

    /// What a cancelled submission leaves in the history so the conversation stays valid: a
    /// result for every call of an unanswered tool batch (the journal's recorded result of a
    /// finished call, otherwise "interrupted by a cancel", never run again), or the output a
    /// cancelled model turn had streamed. Nothing when the input never reached the history or
    /// the last turn completed.
    static func cancellationRepair(_ record: SubmissionRecord, history: SessionSnapshot?, partialOutput: [String])
        -> [Message]
    {
        let messages = history?.messages ?? []
        guard let inputIndex = history?.messageIndex(ofInput: record.submissionId), inputIndex < messages.count else {
            return []
        }
        let after = messages[(inputIndex + 1)...]
        if case .assistant(let pendingCalls)? = after.last, !pendingCalls.toolCalls.isEmpty {
            return toolResults(for: pendingCalls, journal: record.journal, interrupted: interruptedByCancel).messages
        }
        let partial = partialOutput.joined()
        if case .assistant? = after.last { return [] }
        guard record.journal?.phase == .modelRequestStarted, !partial.isEmpty else { return [] }
        let model = ModelSpecifier(provider: "recovered", model: "partial")
        return [.assistant(AssistantMessage(content: [.text(partial)], stopReason: .aborted, usage: Usage(), model: model))]
    }

    /// Results for calls an earlier submission left unanswered (it was cancelled while they
    /// awaited approval): none of them ran.
    static func notRunResults(for assistant: AssistantMessage) -> [Message] {
        assistant.toolCalls.map {
            .toolResult(
                ToolResultMessage(
                    toolCallId: $0.id, toolName: $0.name,
                    content: #"{"type":"not_run","message":"The request that made this call was cancelled before the call was approved; it never ran."}"#,
                    isError: true))
        }
    }

    static let interruptedByStop =
        #"{"type":"interrupted","message":"The process running this tool call stopped before it finished; its outcome is unknown. It was not run again."}"#
    static let interruptedByCancel =
        #"{"type":"interrupted","message":"The submission was cancelled while this tool call ran; it was stopped and its outcome is unknown. It was not run again."}"#

    /// A result for each call of `assistant`: the recorded result of a call the journal saw
    /// finish, `interrupted` (an error result) for every other; and the names of the latter.
    private static func toolResults(for assistant: AssistantMessage, journal: TurnJournal?, interrupted content: String)
        -> (messages: [Message], interrupted: [String])
    {
        let finished = Dictionary(
            (journal?.tools ?? []).filter { $0.state == .finished }.map { ($0.toolCallId, $0) },
            uniquingKeysWith: { first, _ in first })
        var interrupted: [String] = []
        let results = assistant.toolCalls.map { call -> Message in
            if let entry = finished[call.id], let result = entry.result {
                return .toolResult(
                    ToolResultMessage(toolCallId: call.id, toolName: call.name, content: result, isError: entry.isError ?? false))
            }
            interrupted.append(call.name)
            return .toolResult(ToolResultMessage(toolCallId: call.id, toolName: call.name, content: content, isError: true))
        }
        return (results, interrupted)
    }

    /// The prompt response a completed submission had: the final text, the usage of every
    /// model turn after the input, and the model that answered.
    static func response(after messages: ArraySlice<Message>, final: AssistantMessage) -> JSONValue {
        var usage = Usage()
        for case .assistant(let assistant) in messages { usage += assistant.usage }
        let response = PromptResponse(text: final.text, usage: usage, model: final.model)
        return (try? JSONValue(encoding: response)) ?? .null
    }
}
