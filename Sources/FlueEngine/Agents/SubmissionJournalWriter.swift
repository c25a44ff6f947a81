import FluePersistence
import FlueRuntime
import Foundation
import Logging
import Synchronization

/// Stop requests and the superseded flag of one running attempt, readable without awaiting.
final class AttemptControl: Sendable {
    private let state = Mutex<(stop: Bool, superseded: Bool, abort: Bool)>((false, false, false))

    /// Asks the attempt to stop at its next turn boundary (graceful shutdown).
    func requestStop() { state.withLock { $0.stop = true } }
    var stopRequested: Bool { state.withLock { $0.stop } }

    /// The store refused one of the attempt's writes: another attempt owns the submission now.
    func markSuperseded() { state.withLock { $0.superseded = true } }
    var superseded: Bool { state.withLock { $0.superseded } }

    /// Cancels the attempt now (a cancel request): it settles `aborted` instead of an outcome.
    /// Returns false when it was asked before.
    func requestAbort() -> Bool {
        state.withLock { state in
            defer { state.abort = true }
            return !state.abort
        }
    }
    var abortRequested: Bool { state.withLock { $0.abort } }
}

/// Why an attempt stopped without an outcome of its own.
struct AttemptStopped: Error, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}

/// Journals one attempt of a submission into the store (``OperationJournal``): input applied,
/// model request started (with its stream key), streamed output in segments, tool calls
/// started and finished, tool results recorded, committed. Every write is a compare-and-set on
/// the attempt id; a refused write means another process took the submission over, and the
/// attempt stops at its next boundary.
actor SubmissionJournalWriter: OperationJournal {
    private let store: any SubmissionStore
    private let submissionId: String
    private let attemptId: String
    private let control: AttemptControl
    private let timeoutAt: Date?
    private let chunkInterval: Duration
    private let logger: Logger
    private var journal = TurnJournal(phase: .inputApplied, turn: 0)
    private var pending = ""
    private var chunkIndex = 0
    private var lastFlush = ContinuousClock.now

    init(
        store: any SubmissionStore, record: SubmissionRecord, attemptId: String, control: AttemptControl,
        chunkInterval: Duration, logger: Logger
    ) {
        self.store = store
        self.submissionId = record.submissionId
        self.attemptId = attemptId
        self.control = control
        self.timeoutAt = record.timeoutAt
        self.chunkInterval = chunkInterval
        self.logger = logger
    }

    /// Writes the journal; a refused write marks the attempt superseded and stops it.
    private func save() async throws {
        guard try await store.writeJournal(submissionId, attemptId: attemptId, journal) else {
            control.markSuperseded()
            throw AttemptStopped(reason: "submission \(submissionId) is owned by another attempt")
        }
    }

    /// Like `save`, for hooks that cannot throw: failures are logged (recovery treats a missing
    /// entry as an unknown outcome, which is the conservative reading).
    private func saveQuietly() async {
        do {
            try await save()
        } catch {
            logger.warning(
                "could not journal a tool call", metadata: ["submissionId": "\(submissionId)", "error": "\(error)"])
        }
    }

    func inputApplied() async throws {
        guard try await store.markInputApplied(submissionId, attemptId: attemptId, at: Date()) else {
            control.markSuperseded()
            throw AttemptStopped(reason: "submission \(submissionId) is owned by another attempt")
        }
        journal = TurnJournal(phase: .inputApplied, turn: 0)
        try await save()
    }

    func modelRequestStarting(turn: Int) async throws {
        if control.stopRequested { throw AttemptStopped(reason: "the server is shutting down") }
        if control.superseded { throw AttemptStopped(reason: "submission \(submissionId) is owned by another attempt") }
        if let timeoutAt, Date() > timeoutAt {
            throw FlueError(
                .submissionTimeout, "the submission ran past its timeout before model turn \(turn + 1)",
                details: ["timeoutAt": .string(FlueEvent.formatTimestamp(timeoutAt))])
        }
        journal = TurnJournal(phase: .modelRequestStarted, turn: turn, streamKey: "\(attemptId):\(turn)")
        pending = ""
        chunkIndex = 0
        lastFlush = .now
        try await save()
    }

    func streamed(turn: Int, text: String) async {
        pending += text
        if ContinuousClock.now - lastFlush >= chunkInterval { await flush() }
    }

    /// Saves the streamed text not yet saved as the next segment.
    private func flush() async {
        lastFlush = .now
        guard !pending.isEmpty, let key = journal.streamKey else { return }
        let text = pending
        pending = ""
        do {
            _ = try await store.appendStreamChunk(submissionId, streamKey: key, index: chunkIndex, text: text)
            chunkIndex += 1
        } catch {
            pending = text + pending
            logger.warning("could not save streamed output", metadata: ["submissionId": "\(submissionId)", "error": "\(error)"])
        }
    }

    func assistantRecorded(turn: Int, _ message: AssistantMessage) async throws {
        pending = ""
        journal = TurnJournal(phase: message.toolCalls.isEmpty ? .committed : .toolsRequested, turn: turn)
        try await save()
    }

    func toolStarted(turn: Int, _ call: ToolCall) async {
        journal.tools.append(.init(toolCallId: call.id, toolName: call.name, state: .started))
        await saveQuietly()
    }

    func toolFinished(turn: Int, _ call: ToolCall, result: ToolResultMessage) async {
        let entry = TurnJournal.ToolCallEntry(
            toolCallId: call.id, toolName: call.name, state: .finished, result: result.content, isError: result.isError)
        if let index = journal.tools.firstIndex(where: { $0.toolCallId == call.id }) {
            journal.tools[index] = entry
        } else {
            journal.tools.append(entry)
        }
        await saveQuietly()
    }

    func toolResultsRecorded(turn: Int) async throws {
        journal = TurnJournal(phase: .toolResultsRecorded, turn: turn)
        try await save()
    }
}
