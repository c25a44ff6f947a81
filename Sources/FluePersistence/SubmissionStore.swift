import FlueRuntime
import Foundation

/// Where a durable agent submission is in its life: `queued → running → completed | failed |
/// aborted` (or `queued → aborted` when cancelled before it ran); `running → awaiting_approval →
/// queued` while a human decides on a tool call (it keeps its place at the head of its session).
public enum SubmissionStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case queued, running, completed, failed, aborted
    case awaitingApproval = "awaiting_approval"

    /// `completed`, `failed` or `aborted`: nothing changes any more.
    public var isSettled: Bool { self == .completed || self == .failed || self == .aborted }

    /// The status a settlement with `outcome` gives: a failure whose error `type` is `aborted`
    /// (a cancellation) is stored as `aborted`.
    public static func settled(by outcome: Outcome) -> SubmissionStatus {
        switch outcome {
        case .completed: .completed
        case .failed(let error): error["type"]?.stringValue == FlueError.Kind.aborted.rawValue ? .aborted : .failed
        }
    }
}

/// How a submission entered the queue.
public enum SubmissionKind: String, Sendable, Hashable, Codable {
    /// `POST /agents/:name/:id` with `{message, images?}`.
    case direct
    /// `dispatch(...)` from application code (webhooks); idempotent on its dispatch id.
    case dispatch
}

// A submission belongs to one conversation, named by the runtime's `SessionKey`. Submissions of
// one session run one at a time, in admission order; different sessions run in parallel.
// Submissions address the default harness: the stores keep agent, instance id and session.

extension SessionKey {
    /// `agent/instanceId/session`: how submission stores name a conversation (logs, errors, the
    /// Postgres admission lock).
    public var submissionPath: String { "\(agent)/\(instanceId)/\(session)" }
}

/// A submission to admit.
public struct NewSubmission: Sendable, Hashable {
    /// Unique id; for `dispatch` it is the dispatch id, which makes admission idempotent.
    public var submissionId: String
    public var key: SessionKey
    public var kind: SubmissionKind
    /// `{message, images}` for direct prompts; the application's input for dispatches.
    public var input: JSONValue
    public var acceptedAt: Date
    /// Attempts (the first run included) before the submission fails as exhausted.
    public var maxAttempts: Int
    /// How long after its first start the submission may still begin a new model turn.
    public var timeout: Duration
    /// The instance stream's tail at admission: where the submission's events start.
    public var streamOffset: String?
    /// The admitting request's trace context as propagation headers (W3C `traceparent`,
    /// `tracestate`): its attempts continue that trace (not compared by idempotent admission).
    public var traceContext: [String: String]?

    public init(
        submissionId: String, key: SessionKey, kind: SubmissionKind, input: JSONValue, acceptedAt: Date,
        maxAttempts: Int = 10, timeout: Duration = .seconds(3600), streamOffset: String? = nil,
        traceContext: [String: String]? = nil
    ) {
        self.traceContext = traceContext
        self.streamOffset = streamOffset
        self.submissionId = submissionId
        // Submissions run in the default harness; the stores keep no other.
        self.key = SessionKey(agent: key.agent, instanceId: key.instanceId, session: key.session)
        self.kind = kind
        self.input = input
        self.acceptedAt = acceptedAt
        self.maxAttempts = maxAttempts
        self.timeout = timeout
    }
}

/// A submission as stored.
public struct SubmissionRecord: Sendable, Hashable {
    public var submissionId: String
    /// Admission order, increasing across the whole store.
    public var sequence: Int64
    public var key: SessionKey
    public var kind: SubmissionKind
    public var input: JSONValue
    public var status: SubmissionStatus
    public var acceptedAt: Date
    /// The attempt that currently owns the submission (new on every claim and take-over).
    public var attemptId: String?
    /// The process that owns the current attempt.
    public var owner: String?
    public var leaseExpiresAt: Date?
    /// Attempts started so far (claims and take-overs).
    public var attemptCount: Int
    public var maxAttempts: Int
    /// Timeout in milliseconds, counted from `startedAt`.
    public var timeoutMs: Int
    public var startedAt: Date?
    public var inputAppliedAt: Date?
    public var settledAt: Date?
    /// The settled value (`completed`).
    public var result: JSONValue?
    /// The settled error (`failed`): `{type, message, details}`.
    public var error: JSONValue?
    /// The current attempt's turn journal.
    public var journal: TurnJournal?
    /// When a cancel was first asked for while the submission ran (its owner stops it and
    /// settles it `aborted`; a recoverer that takes it over does the same).
    public var cancelRequestedAt: Date?
    /// The instance stream's tail at admission: where the submission's events start.
    public var streamOffset: String?
    /// Tool calls of this submission that needed a human decision, pending or decided.
    public var approvals: [ToolApprovalRecord]
    /// See ``NewSubmission/traceContext``.
    public var traceContext: [String: String]?

    public init(
        submissionId: String, sequence: Int64, key: SessionKey, kind: SubmissionKind, input: JSONValue,
        status: SubmissionStatus, acceptedAt: Date, attemptId: String? = nil, owner: String? = nil,
        leaseExpiresAt: Date? = nil, attemptCount: Int = 0, maxAttempts: Int = 10, timeoutMs: Int = 3_600_000,
        startedAt: Date? = nil, inputAppliedAt: Date? = nil, settledAt: Date? = nil, result: JSONValue? = nil,
        error: JSONValue? = nil, journal: TurnJournal? = nil, cancelRequestedAt: Date? = nil, streamOffset: String? = nil,
        approvals: [ToolApprovalRecord] = [], traceContext: [String: String]? = nil
    ) {
        self.traceContext = traceContext
        self.approvals = approvals
        self.cancelRequestedAt = cancelRequestedAt
        self.streamOffset = streamOffset
        self.submissionId = submissionId
        self.sequence = sequence
        self.key = key
        self.kind = kind
        self.input = input
        self.status = status
        self.acceptedAt = acceptedAt
        self.attemptId = attemptId
        self.owner = owner
        self.leaseExpiresAt = leaseExpiresAt
        self.attemptCount = attemptCount
        self.maxAttempts = maxAttempts
        self.timeoutMs = timeoutMs
        self.startedAt = startedAt
        self.inputAppliedAt = inputAppliedAt
        self.settledAt = settledAt
        self.result = result
        self.error = error
        self.journal = journal
    }

    /// When the submission may no longer start a model turn (`nil` before its first start).
    public var timeoutAt: Date? { startedAt.map { $0.addingTimeInterval(Double(timeoutMs) / 1000) } }
}

/// The result of an admission.
public enum Admission: Sendable, Hashable {
    /// A new submission was queued.
    case admitted(SubmissionRecord)
    /// The same id with the same input was admitted before: the original record.
    case existing(SubmissionRecord)

    public var record: SubmissionRecord {
        switch self {
        case .admitted(let record), .existing(let record): record
        }
    }
}

/// A tool call that needs a human decision before it runs (`approval_requested`), and the
/// decision once made. Stored with its submission (as JSON).
public struct ToolApprovalRecord: Sendable, Hashable, Codable {
    /// `approve` or `deny`.
    public enum Decision: String, Sendable, Hashable, Codable {
        case approve, deny
    }

    public var callId: String
    public var tool: String
    public var arguments: JSONValue
    public var requestedAt: Date
    /// After this, a pending call is denied (`reason` "expired").
    public var expiresAt: Date
    public var decision: Decision?
    public var reason: String?
    public var decidedAt: Date?

    public init(
        callId: String, tool: String, arguments: JSONValue, requestedAt: Date, expiresAt: Date,
        decision: Decision? = nil, reason: String? = nil, decidedAt: Date? = nil
    ) {
        self.callId = callId
        self.tool = tool
        self.arguments = arguments
        self.requestedAt = requestedAt
        self.expiresAt = expiresAt
        self.decision = decision
        self.reason = reason
        self.decidedAt = decidedAt
    }

    /// The approvals as stored (a JSON array; dates as epoch milliseconds).
    public static func encode(_ approvals: [ToolApprovalRecord]) -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(approvals)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
    }

    /// Approvals read back; none for `nil` or unreadable text.
    public static func decode(_ text: String?) -> [ToolApprovalRecord] {
        guard let text, !text.isEmpty else { return [] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return (try? decoder.decode([ToolApprovalRecord].self, from: Data(text.utf8))) ?? []
    }
}

/// What ``SubmissionStore/decideApproval(_:callId:decision:reason:at:)`` did.
public enum ApprovalDecisionResult: Sendable, Hashable {
    /// Recorded; the record as it is now (`queued` again once no call is pending).
    case decided(SubmissionRecord)
    /// The call had been decided before: nothing changed.
    case alreadyDecided(SubmissionRecord)
}

extension SubmissionRecord {
    /// Applies a decision on call `callId` (the rule every store follows): `nil` when the record
    /// has no such call; unchanged and `.alreadyDecided` when the call was decided or the
    /// submission no longer awaits approval; else recorded, the status `queued` once no call is
    /// pending, and `.decided`.
    public mutating func applyDecision(
        callId: String, decision: ToolApprovalRecord.Decision, reason: String?, at: Date
    ) -> ApprovalDecisionResult? {
        guard let index = approvals.firstIndex(where: { $0.callId == callId }) else { return nil }
        guard status == .awaitingApproval, approvals[index].decision == nil else { return .alreadyDecided(self) }
        approvals[index].decision = decision
        approvals[index].reason = reason
        approvals[index].decidedAt = at
        if approvals.allSatisfy({ $0.decision != nil }) { status = .queued }
        return .decided(self)
    }
}

/// What ``SubmissionStore/requestCancel(_:at:)`` did.
public enum CancelRequest: Sendable, Hashable {
    /// The submission was queued (or awaiting approval) and is now settled `aborted` (by this call).
    case aborted(SubmissionRecord)
    /// The submission runs; `cancelRequestedAt` is set (by this call or an earlier one) and its
    /// owner stops it.
    case requested(SubmissionRecord)
    /// The submission had settled already; nothing changed.
    case alreadySettled(SubmissionRecord)

    /// The error a submission cancelled while queued settles with.
    public static let abortedError: JSONValue = FlueError(
        .aborted, "the submission was cancelled while it waited to run (queued, or awaiting approval)"
    ).json
}

/// Failures of the submission contract.
public enum SubmissionStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The id was admitted before with a different input or for another session.
    case conflict(submissionId: String)
    /// The session is being deleted; nothing new is admitted to it.
    case sessionDeleting(SessionKey)

    public var description: String {
        switch self {
        case .conflict(let id): "submission \(id) was already admitted with a different input"
        case .sessionDeleting(let key): "session \(key.submissionPath) is being deleted"
        }
    }
}

/// A record that an attempt began, written once per attempt number.
public struct AttemptMarker: Sendable, Hashable {
    public var attempt: Int
    public var owner: String
    public var at: Date

    public init(attempt: Int, owner: String, at: Date) {
        self.attempt = attempt
        self.owner = owner
        self.at = at
    }
}

/// Durable agent submissions: ordered admission per session, an atomic claim of each session's
/// runnable head under a lease, a turn journal, stream-chunk segments and settlement.
///
/// Contract (the suite in `FluePersistenceTesting` checks each clause, across two connections
/// for Postgres):
/// - `admit` is idempotent on `submissionId`: the same id with the same key and input returns the
///   original record; anything else is `SubmissionStoreError.conflict`. Admission to a session
///   that is being deleted fails with `sessionDeleting`.
/// - `claim` moves `queued → running` only when the submission is the oldest unsettled one of
///   its session and nothing in the session runs; of concurrent claimers at most one wins.
/// - Every write made by an attempt (`markInputApplied`, `writeJournal`, `requeue`,
///   `releaseLease`, `settle` with an attempt id) is a compare-and-set on `attemptId`: a stale
///   attempt changes nothing and learns so from the `false` it gets back.
/// - `settle`: the first terminal state wins; a failure of type `aborted` is stored as `aborted`.
/// - `requestCancel` settles a queued submission `aborted` (racing `claim`: one of them wins) or
///   marks a running one; it never changes a settled one.
public protocol SubmissionStore: Sendable {
    /// Queues a submission after every earlier one of its session.
    func admit(_ submission: NewSubmission) async throws -> Admission
    func submission(_ submissionId: String) async throws -> SubmissionRecord?
    /// For each session of one of `agents` with unsettled work, its oldest unsettled submission
    /// when that is still queued (nothing runs in the session), oldest first. Filtering by agent
    /// keeps work of agents this process does not run (another app, an older release) from
    /// crowding the page.
    func runnableHeads(agents: Set<String>, limit: Int) async throws -> [SubmissionRecord]
    /// Compare-and-set `queued → running` of a session head: new attempt id, owner, lease,
    /// `attemptCount + 1`, `startedAt` on the first start. `nil` when another claimer won or the
    /// submission is not the head.
    func claim(_ submissionId: String, owner: String, attemptId: String, now: Date, leaseUntil: Date) async throws
        -> SubmissionRecord?
    /// Extends the leases of the listed running attempts of `owner` (the ones it still works on:
    /// an attempt that ended without a settlement must not be kept alive).
    func renewLeases(owner: String, attemptIds: [String], until: Date) async throws
    /// Records that the input is in the session history.
    func markInputApplied(_ submissionId: String, attemptId: String, at: Date) async throws -> Bool
    /// Replaces the turn journal of the current attempt.
    func writeJournal(_ submissionId: String, attemptId: String, _ journal: TurnJournal) async throws -> Bool
    /// Stores one segment of streamed model output; a segment is written once (a second write
    /// of the same key and index changes nothing and returns false).
    func appendStreamChunk(_ submissionId: String, streamKey: String, index: Int, text: String) async throws -> Bool
    /// The segments of one streamed turn, in index order.
    func streamChunks(_ submissionId: String, streamKey: String) async throws -> [String]
    /// Writes the marker of attempt number `attempt` once; false when it exists.
    func markAttempt(_ submissionId: String, _ marker: AttemptMarker) async throws -> Bool
    func attemptMarkers(_ submissionId: String) async throws -> [AttemptMarker]
    /// Running submissions of `agents` whose lease expired before `now`, oldest first.
    func expiredLeases(agents: Set<String>, now: Date, limit: Int) async throws -> [SubmissionRecord]
    /// Compare-and-set take-over of an expired running submission for recovery: new attempt id,
    /// owner and lease, `attemptCount + 1`. `nil` when the lease is not expired or another
    /// recoverer won.
    func takeOver(
        _ submissionId: String, expectedAttemptId: String, owner: String, attemptId: String, now: Date, leaseUntil: Date
    ) async throws -> SubmissionRecord?
    /// Puts a running submission back in the queue (its input was never applied).
    func requeue(_ submissionId: String, attemptId: String) async throws -> Bool
    /// Lets the lease expire now (graceful shutdown), so another process reclaims it at once.
    func releaseLease(_ submissionId: String, attemptId: String, at: Date) async throws -> Bool
    /// Settles a submission; `attemptId` nil settles whatever attempt holds it. The first
    /// terminal state wins.
    func settle(_ submissionId: String, attemptId: String?, _ outcome: Outcome, at: Date) async throws -> Bool
    /// Cancels a submission: queued or awaiting approval → settled `aborted` with error `{type: "aborted"}` at `at`;
    /// running → `cancelRequestedAt` set (kept if set before); settled → unchanged. `nil` for an
    /// unknown id.
    func requestCancel(_ submissionId: String, at: Date) async throws -> CancelRequest?
    /// Submissions of one agent instance (every session), newest first (by `sequence`), only
    /// those with a sequence below `before` when given; at most `limit`.
    func submissions(agent: String, instanceId: String, before: Int64?, limit: Int) async throws -> [SubmissionRecord]
    /// Parks a running attempt until humans decide (compare-and-set on `attemptId`): status
    /// `awaiting_approval`, no owner, attempt, lease or `startedAt` (the timeout counts again from
    /// the next claim: time spent waiting for people does not count), `approvals` stored as given. False when
    /// the attempt no longer holds the submission.
    func awaitApproval(_ submissionId: String, attemptId: String, approvals: [ToolApprovalRecord]) async throws -> Bool
    /// Records a decision on one pending call of a submission awaiting approval; when no call
    /// is pending any more the submission is `queued` again (still the head of its session).
    /// `nil` when no submission awaiting approval has that pending or decided call.
    func decideApproval(
        _ submissionId: String, callId: String, decision: ToolApprovalRecord.Decision, reason: String?, at: Date
    ) async throws -> ApprovalDecisionResult?
    /// Submissions of `agents` awaiting approval, oldest first, at most `limit` (expiry scans).
    func awaitingApproval(agents: Set<String>, limit: Int) async throws -> [SubmissionRecord]
    /// Marks a session as being deleted (admissions fail) when none of its submissions is
    /// unsettled; false (and no mark) otherwise.
    func beginSessionDeletion(_ key: SessionKey) async throws -> Bool
    /// Removes the deletion mark and the session's settled submissions.
    func finishSessionDeletion(_ key: SessionKey) async throws
    /// How many submissions of the whole store are queued, running and awaiting approval (the
    /// statuses with none are left out): the queue depth the metrics report.
    func openCounts() async throws -> [SubmissionStatus: Int]
}

/// Trace context carriers as stored: a JSON object of header names to values.
public enum TraceContextColumn {
    public static func encode(_ context: [String: String]?) -> String? {
        guard let context, !context.isEmpty else { return nil }
        return JSONValue.object(context.mapValues { .string($0) }).jsonString
    }

    public static func decode(_ text: String?) -> [String: String]? {
        guard let object = text.flatMap({ try? JSONValue(parsing: $0) })?.objectValue else { return nil }
        return object.compactMapValues(\.stringValue)
    }
}
