import FluePersistence
import FlueRuntime
import Foundation

/// A submission as clients read it (`GET /agents/:name/:id/submissions/:submissionId`):
/// `{submissionId, kind, status, admittedAt, startedAt?, settledAt?, cancelRequestedAt?, attempts,
/// result?, error?, offset}`. Timestamps are RFC 3339 with milliseconds (UTC); `offset` is where
/// the submission's events start on the instance stream (read from it to see them all).
public struct SubmissionView: Sendable, Hashable {
    public var submissionId: String
    /// `direct` (a prompt) or `dispatch` (application input).
    public var kind: SubmissionKind
    /// `queued`, `running`, `completed`, `failed` or `aborted`.
    public var status: SubmissionStatus
    public var admittedAt: Date
    public var startedAt: Date?
    public var settledAt: Date?
    /// Set once a cancel was asked for while the submission ran.
    public var cancelRequestedAt: Date?
    /// How many attempts started (a takeover after a crash starts another).
    public var attempts: Int
    /// The prompt response (`{text, usage, model}`) once `completed`.
    public var result: JSONValue?
    /// The error envelope (`{type, message, details}`) once `failed` or `aborted`.
    public var error: JSONValue?
    public var offset: String

    init(_ record: SubmissionRecord) {
        submissionId = record.submissionId
        kind = record.kind
        status = record.status
        admittedAt = record.acceptedAt
        startedAt = record.startedAt
        settledAt = record.settledAt
        cancelRequestedAt = record.cancelRequestedAt
        attempts = record.attemptCount
        result = record.result
        error = record.error
        offset = record.streamOffset ?? StreamOffset.start.description
    }

    /// The JSON served over HTTP (absent fields left out).
    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "submissionId": .string(submissionId), "kind": .string(kind.rawValue), "status": .string(status.rawValue),
            "admittedAt": .string(FlueEvent.formatTimestamp(admittedAt)), "attempts": .int(attempts),
            "offset": .string(offset),
        ]
        if let startedAt { object["startedAt"] = .string(FlueEvent.formatTimestamp(startedAt)) }
        if let settledAt { object["settledAt"] = .string(FlueEvent.formatTimestamp(settledAt)) }
        if let cancelRequestedAt { object["cancelRequestedAt"] = .string(FlueEvent.formatTimestamp(cancelRequestedAt)) }
        if let result { object["result"] = result }
        if let error { object["error"] = error }
        return .object(object)
    }
}

/// One page of an instance's submissions, newest first; `nextCursor` reads the next (older) page.
public struct SubmissionPage: Sendable, Hashable {
    public var submissions: [SubmissionView]
    public var nextCursor: String?
}

/// What a cancel did (``Engine/cancel(submission:agent:id:)``).
public enum SubmissionCancellation: Sendable, Hashable {
    /// It was queued: it is settled `aborted` now and never runs.
    case aborted(SubmissionView)
    /// It runs: its owner (this process or another sharing the store) stops it and settles it
    /// `aborted`, normally within a moment; a turn that finishes first may still complete it.
    case stopping(SubmissionView)
    /// It had settled before: nothing changed.
    case alreadySettled(SubmissionView)

    public var submission: SubmissionView {
        switch self {
        case .aborted(let view), .stopping(let view), .alreadySettled(let view): view
        }
    }
}

/// What a run cancel did (``Engine/cancel(run:)``).
public enum RunCancellation: Sendable, Hashable {
    /// The run is active: its owner cancels it; it ends errored with type `aborted`.
    case stopping(RunRecord)
    /// The run had ended before: nothing changed.
    case alreadyEnded(RunRecord)
}
