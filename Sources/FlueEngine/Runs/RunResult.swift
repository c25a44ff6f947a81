import FlueRuntime

/// How a workflow run ended, as `?wait=result` reports it.
public enum RunResult: Sendable {
    case completed(JSONValue)
    case failed(any Error)
}

/// What admission hands back: the run id and where to read its events.
public struct RunReceipt: Sendable {
    public var runId: String
    /// The event stream path, `runs/<runId>`.
    public var streamPath: String
    /// Offset to read from to see the whole run (`-1`).
    public var offset: String
    /// Completes when the run ends.
    public let completion: Task<RunResult, Never>
}
