import FlueRuntime

/// What admission hands back: the run id and where to read its events.
public struct RunReceipt: Sendable {
    public var runId: String
    /// The event stream path, `runs/<runId>`.
    public var streamPath: String
    /// Offset to read from to see the whole run (the start of its stream).
    public var offset: String
    /// Completes when the run ends: its result, or the error the workflow threw (its stored form
    /// is the run record's ``Outcome``).
    public let completion: Task<Result<JSONValue, any Error>, Never>
}
