import FlueRuntime
import Foundation

/// Where a workflow run is in its life.
public enum RunStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case active, completed, errored
}

/// A workflow run as stored and as served by `GET /runs/:runId?meta`.
public struct RunRecord: Sendable, Hashable, Codable {
    public var runId: String
    public var workflowName: String
    public var status: RunStatus
    public var startedAt: Date
    public var payload: JSONValue?
    public var endedAt: Date?
    public var isError: Bool?
    public var durationMs: Int?
    public var result: JSONValue?
    public var error: JSONValue?
    /// The process that runs it (not served over HTTP).
    public var owner: String?
    /// When the owner last said it is alive (not served over HTTP).
    public var heartbeatAt: Date?
    /// When a cancel was first asked for (not served over HTTP): the owner stops the run.
    public var cancelRequestedAt: Date?
    /// The subject of the principal that started it over HTTP under an access policy (served as
    /// `startedBy`); `nil` for runs started from code or on open routes.
    public var startedBy: String?
    /// Tokens and cost of every model turn of the run, set when it ends (`nil` before, and for a
    /// run terminalized after its process died).
    public var usage: Usage?
    /// The starting request's trace context as propagation headers (not served over HTTP): a
    /// process that terminalizes the run links its span to that trace.
    public var traceContext: [String: String]?

    private enum CodingKeys: String, CodingKey {
        case runId, workflowName, status, startedAt, payload, endedAt, isError, durationMs, result, error, startedBy, usage
    }

    public init(
        runId: String, workflowName: String, status: RunStatus = .active, startedAt: Date, payload: JSONValue?,
        endedAt: Date? = nil, isError: Bool? = nil, durationMs: Int? = nil, result: JSONValue? = nil,
        error: JSONValue? = nil, owner: String? = nil, heartbeatAt: Date? = nil, cancelRequestedAt: Date? = nil,
        startedBy: String? = nil, usage: Usage? = nil, traceContext: [String: String]? = nil
    ) {
        self.traceContext = traceContext
        self.usage = usage
        self.startedBy = startedBy
        self.cancelRequestedAt = cancelRequestedAt
        self.owner = owner
        self.heartbeatAt = heartbeatAt
        self.runId = runId
        self.workflowName = workflowName
        self.status = status
        self.startedAt = startedAt
        self.payload = payload
        self.endedAt = endedAt
        self.isError = isError
        self.durationMs = durationMs
        self.result = result
        self.error = error
    }

    /// The record without payload, result and error: what listings return.
    public var pointer: RunPointer {
        RunPointer(
            runId: runId, workflowName: workflowName, status: status, startedAt: startedAt, endedAt: endedAt,
            isError: isError, durationMs: durationMs, startedBy: startedBy)
    }
}

/// A run's identity and status, without its data.
public struct RunPointer: Sendable, Hashable, Codable {
    public var runId: String
    public var workflowName: String
    public var status: RunStatus
    public var startedAt: Date
    public var endedAt: Date?
    public var isError: Bool?
    public var durationMs: Int?
    /// See ``RunRecord/startedBy``.
    public var startedBy: String?
}

extension RunStatus {
    /// The terminal status of a run that ended with `outcome`.
    public init(ending outcome: Outcome) { self = outcome.isError ? .errored : .completed }
}

/// A page of runs, newest first, with an opaque cursor for the next page.
public struct RunPage: Sendable, Hashable {
    public var runs: [RunPointer]
    public var nextCursor: String?

    public init(runs: [RunPointer], nextCursor: String?) {
        self.runs = runs
        self.nextCursor = nextCursor
    }
}

/// The position in a run listing that a page's `nextCursor` encodes: start time and run id of
/// the last run returned. Adapters use it; clients treat the token as opaque.
public struct RunListCursor: Codable, Hashable, Sendable {
    public var s: Date
    public var r: String

    /// Encodes as base64url JSON without padding.
    public var token: String {
        let data = (try? JSONEncoder.flue.encode(self)) ?? Data()
        return data.base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    public init(s: Date, r: String) {
        self.s = s
        self.r = r
    }

    public init?(token: String) {
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64),
            let cursor = try? JSONDecoder.flue.decode(RunListCursor.self, from: data)
        else { return nil }
        self = cursor
    }
}

/// Stores workflow run records.
///
/// Contract: `createRun` is first-writer-wins (returns false when the id exists); `endRun` is a
/// no-op for unknown or already-ended runs (the first terminal state wins, returns whether this
/// call won); listings are newest first by `startedAt` then `runId`. Runs carry an owner and a
/// heartbeat so that runs left `active` by a dead process can be found and terminalized exactly once.
public protocol RunStore: Sendable {
    func createRun(_ record: RunRecord) async throws -> Bool
    /// Ends an active run with its outcome and the `usage` of its model turns.
    @discardableResult
    func endRun(_ runId: String, _ outcome: Outcome, endedAt: Date, durationMs: Int, usage: Usage?) async throws -> Bool
    func getRun(_ runId: String) async throws -> RunRecord?
    func listRuns(status: RunStatus?, workflowName: String?, limit: Int, cursor: String?) async throws -> RunPage
    /// Marks every active run of `owner` alive at `at`.
    func heartbeatRuns(owner: String, at: Date) async throws
    /// Atomically takes over active runs whose heartbeat is older than `staleBefore`: their owner
    /// becomes `newOwner` and their heartbeat `now`. Two concurrent callers never get the same run.
    func claimStaleRuns(staleBefore: Date, newOwner: String, now: Date, limit: Int) async throws -> [RunRecord]
    /// Marks an active run as asked to stop (`cancelRequestedAt`, kept if set before) and
    /// returns it; an ended run is returned unchanged; `nil` for an unknown id.
    func requestCancel(_ runId: String, at: Date) async throws -> RunRecord?
}

extension RunStore {
    /// Ends an active run without a usage record.
    @discardableResult
    public func endRun(_ runId: String, _ outcome: Outcome, endedAt: Date, durationMs: Int) async throws -> Bool {
        try await endRun(runId, outcome, endedAt: endedAt, durationMs: durationMs, usage: nil)
    }

    /// The run's pointer, if it exists.
    public func lookupRun(_ runId: String) async throws -> RunPointer? {
        try await getRun(runId)?.pointer
    }
}
