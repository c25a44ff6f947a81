import FlueRuntime
import Synchronization

/// What admission hands back: the run id and where to read its events.
public struct RunReceipt: Sendable {
    public var runId: String
    /// The event stream path, `runs/<runId>`.
    public var streamPath: String
    /// Offset to read from to see the whole run (the start of its stream).
    public var offset: String
    private let source: CompletionSource

    /// Completes when the run ends: its result, or the error the workflow threw (its stored form
    /// is the run record's ``Outcome``). For a replayed idempotency key the task, created on first
    /// access, waits for the original run wherever it runs.
    public var completion: Task<Result<JSONValue, any Error>, Never> { source.task }

    init(runId: String, streamPath: String, offset: String, completion: Task<Result<JSONValue, any Error>, Never>) {
        self.init(runId: runId, streamPath: streamPath, offset: offset) { completion }
    }

    init(
        runId: String, streamPath: String, offset: String,
        makeCompletion: @escaping @Sendable () -> Task<Result<JSONValue, any Error>, Never>
    ) {
        self.runId = runId
        self.streamPath = streamPath
        self.offset = offset
        self.source = CompletionSource(makeCompletion)
    }
}

/// The completion task of a receipt, made once, when first asked for: a receipt nobody waits on
/// starts no waiting task.
private final class CompletionSource: Sendable {
    private let task_ = Mutex<Task<Result<JSONValue, any Error>, Never>?>(nil)
    private let make: @Sendable () -> Task<Result<JSONValue, any Error>, Never>

    init(_ make: @escaping @Sendable () -> Task<Result<JSONValue, any Error>, Never>) { self.make = make }

    var task: Task<Result<JSONValue, any Error>, Never> {
        task_.withLock { stored in
            if let stored { return stored }
            let made = make()
            stored = made
            return made
        }
    }
}
