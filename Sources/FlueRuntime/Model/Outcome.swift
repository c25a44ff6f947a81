/// How a piece of work ended — a workflow run, an agent submission — as the stores keep it and
/// the wire shows it: its result, or its error as `{type, message, details}`
/// (``FlueError/describe(_:)``). In-process callers that want the live error get a Swift
/// `Result` instead (a run's `completion`).
public enum Outcome: Sendable, Hashable {
    case completed(JSONValue)
    case failed(JSONValue)

    /// `failed` with the error's `{type, message, details}`.
    public static func failed(describing error: any Error) -> Outcome { .failed(FlueError.describe(error)) }

    /// The result, when completed.
    public var result: JSONValue? {
        if case .completed(let value) = self { value } else { nil }
    }

    /// The error envelope, when failed.
    public var error: JSONValue? {
        if case .failed(let value) = self { value } else { nil }
    }

    public var isError: Bool { error != nil }
}

extension FlueEvent.Completion {
    /// The `run_end` / `task` payload of `outcome`.
    public init(_ outcome: Outcome, durationMs: Int, usage: Usage? = nil) {
        self.init(result: outcome.result, isError: outcome.isError, error: outcome.error, durationMs: durationMs, usage: usage)
    }

    /// How the run or task ended (`isError` without an `error` reads as `operation_failed`).
    public var outcome: Outcome {
        isError ? .failed(error ?? FlueError(.operationFailed, "failed").json) : .completed(result ?? .null)
    }
}
