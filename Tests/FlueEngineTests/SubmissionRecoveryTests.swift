import FluePersistence
import FlueRuntime
@testable import FlueEngine
import Foundation
import Testing

/// The recovery rules, one decision at a time.
@Suite struct SubmissionRecoveryTests {
    static let model = ModelSpecifier(provider: "anthropic", model: "claude-fake")

    static func record(attempts: Int = 2, journal: TurnJournal? = nil, startedAgo: TimeInterval = 10) -> SubmissionRecord {
        SubmissionRecord(
            submissionId: "sub_1", sequence: 1, key: SessionKey(agent: "assistant", instanceId: "i"),
            kind: .direct, input: ["message": "hi"], status: .running, acceptedAt: Date(), attemptId: "att_2",
            owner: "me", attemptCount: attempts, maxAttempts: 10, timeoutMs: 60_000,
            startedAt: Date().addingTimeInterval(-startedAgo), journal: journal)
    }

    static func history(_ messages: [Message], inputAt index: Int? = 0) -> SessionSnapshot {
        var snapshot = SessionSnapshot(messages: messages)
        if let index { snapshot.recordInput("sub_1", at: index) }
        return snapshot
    }

    static func assistant(_ text: String, calls: [ToolCall] = []) -> Message {
        .assistant(
            AssistantMessage(
                content: [.text(text)] + calls.map(AssistantBlock.toolCall), stopReason: calls.isEmpty ? .stop : .toolUse,
                usage: Usage(input: 10, output: 5), model: model))
    }

    @Test func anInputThatNeverReachedTheHistoryIsRequeued() {
        let decision = SubmissionRecovery.decide(
            Self.record(), history: Self.history([.user(text: "older", images: [])], inputAt: nil), partialOutput: [], now: Date())
        #expect(decision == .requeue)
        let exhausted = SubmissionRecovery.decide(Self.record(attempts: 11), history: nil, partialOutput: [], now: Date())
        guard case .fail(let error) = exhausted else { Issue.record("\(exhausted)"); return }
        #expect(error.kind == .submissionInterrupted)
        #expect(error.details["phase"] == "retry_exhausted_before_input")
    }

    @Test func aFinalAnswerInTheHistoryCompletesEvenWithoutAttemptsLeft() {
        let history = Self.history([
            .user(text: "hi", images: []), Self.assistant("", calls: [ToolCall(id: "c1", name: "work", arguments: [:])]),
            .toolResult(ToolResultMessage(toolCallId: "c1", toolName: "work", content: "ok", isError: false)),
            Self.assistant("All done"),
        ])
        let decision = SubmissionRecovery.decide(Self.record(attempts: 50), history: history, partialOutput: [], now: Date())
        guard case .complete(let result) = decision else { Issue.record("\(decision)"); return }
        #expect(result["text"] == "All done")
        #expect(result["usage"]?["input"] == 20, "usage of both turns")
        #expect(result["model"] == ["provider": "anthropic", "id": "claude-fake"])
    }

    @Test func exhaustedAttemptsAndTimeoutsFail() {
        let history = Self.history([.user(text: "hi", images: [])])
        guard case .fail(let exhausted) = SubmissionRecovery.decide(Self.record(attempts: 11), history: history, partialOutput: [], now: Date())
        else { Issue.record("expected failure"); return }
        #expect(exhausted.kind == .submissionRetryExhausted)
        guard case .fail(let late) = SubmissionRecovery.decide(Self.record(startedAgo: 120), history: history, partialOutput: [], now: Date())
        else { Issue.record("expected failure"); return }
        #expect(late.kind == .submissionTimeout)
    }

    @Test func toolCallsWithoutARecordedResultAreReportedInterruptedNeverRerun() {
        let calls = [
            ToolCall(id: "c1", name: "charge", arguments: [:]), ToolCall(id: "c2", name: "email", arguments: [:]),
            ToolCall(id: "c3", name: "log", arguments: [:]),
        ]
        let journal = TurnJournal(
            phase: .toolsRequested, turn: 0,
            tools: [
                .init(toolCallId: "c1", toolName: "charge", state: .finished, result: "charged", isError: false),
                .init(toolCallId: "c2", toolName: "email", state: .started),
            ])
        let history = Self.history([.user(text: "hi", images: []), Self.assistant("", calls: calls)])
        let decision = SubmissionRecovery.decide(Self.record(journal: journal), history: history, partialOutput: [], now: Date())
        guard case .resume(let repair, let reason) = decision else { Issue.record("\(decision)"); return }
        let results = repair.compactMap { if case .toolResult(let result) = $0 { result } else { nil } }
        #expect(results.map(\.toolCallId) == ["c1", "c2", "c3"], "in call order")
        #expect(results[0].content == "charged" && !results[0].isError)
        #expect(results[1].isError && results[1].content.contains("interrupted"))
        #expect(results[2].isError && results[2].content.contains("interrupted"))
        #expect(reason.contains("email") && reason.contains("log"))
    }

    @Test func streamedOutputIsResumedAndASilentModelRequestIsRepeated() {
        let history = Self.history([.user(text: "hi", images: [])])
        let streaming = TurnJournal(phase: .modelRequestStarted, turn: 0, streamKey: "att_1:0")
        let resumed = SubmissionRecovery.decide(
            Self.record(journal: streaming), history: history, partialOutput: ["Once upon ", "a time"], now: Date())
        guard case .resume(let repair, _) = resumed, repair.count == 2, case .assistant(let partial) = repair[0],
            case .user(let note, _) = repair[1]
        else { Issue.record("\(resumed)"); return }
        #expect(partial.text == "Once upon a time" && partial.stopReason == .aborted)
        #expect(note.contains("Continue"))
        let silent = SubmissionRecovery.decide(Self.record(journal: streaming), history: history, partialOutput: [], now: Date())
        guard case .resume(let nothing, _) = silent else { Issue.record("\(silent)"); return }
        #expect(nothing.isEmpty)
    }
}
