import FluePersistence
import FlueRuntime
import Foundation

/// Control over workflow runs: cancel, wait for the end.
extension Engine {
    /// Cancels an active workflow run, whichever process runs it (that process learns through
    /// the store's notifications, or at its next heartbeat): its task is cancelled and the run
    /// ends errored with type `aborted` (`run_end` on its stream). A run whose owner died ends
    /// `aborted` when it is terminalized. `nil` for an unknown run id.
    public func cancel(run runId: String) async throws -> RunCancellation? {
        guard let record = try await stores.runs.requestCancel(runId, at: Date.nowMilliseconds) else { return nil }
        guard record.status == .active else { return .alreadyEnded(record) }
        if !cancelLocalRun(runId) { stores.streams.announce(ControlPath.cancellations) }
        return .stopping(record)
    }

    /// Waits until a run has ended (in any process) and returns its record; returns it as it is
    /// once `within` passes first (`nil` waits until it ends). Throws
    /// ``EngineError/shuttingDown(_:)`` if shutdown begins first.
    package func endedRun(_ runId: String, within: Duration?, abandon: AsyncStream<Void>? = nil) async throws
        -> RunRecord?
    {
        let deadline = within.map { ContinuousClock.now + $0 }
        return try await withLiveWakes(
            changes: stores.streams.subscribe("runs/\(runId)"), shutdown: shutdown.signal(), clientGone: abandon,
            tick: .milliseconds(500)
        ) { wakes in
            func check() async throws -> RunRecord?? {
                let record = try await stores.runs.getRun(runId)
                guard let record else { return .some(nil) }
                if record.status != .active { return record }
                if let deadline, ContinuousClock.now >= deadline { return record }
                return nil
            }
            if let found = try await check() { return found }
            for await wake in wakes {
                switch wake {
                case .clientGone: throw EngineError.waitAbandoned
                case .shutdown:
                    throw EngineError.shuttingDown("The server is shutting down; the run \(runId) goes on.")
                case .changed, .tick:
                    if let found = try await check() { return found }
                }
            }
            throw EngineError.shuttingDown("The server is shutting down; the run \(runId) goes on.")
        }
    }

    /// The receipt of a run started before with the same idempotency key; `conflict` when its
    /// workflow or payload differ.
    func replayedRun(_ runId: String, workflow: Workflow, payload: ValidatedPayload, key: String) async throws
        -> RunReceipt
    {
        guard let existing = try await stores.runs.getRun(runId) else {
            throw FlueError(.conflict, "the run for Idempotency-Key \(key) is being created; retry")
        }
        guard existing.workflowName == workflow.name, existing.payload == payload.json else {
            throw FlueError(
                .conflict, "Idempotency-Key \(key) was already used with a different payload",
                details: ["idempotencyKey": .string(key), "runId": .string(runId)])
        }
        let local = runningTask(runId)
        let makeCompletion: @Sendable () -> Task<Result<JSONValue, any Error>, Never> = {
            if let local { return local }
            return self.waitForRun(runId)
        }
        return RunReceipt(runId: runId, streamPath: "runs/\(runId)", offset: StreamOffset.start.description, makeCompletion: makeCompletion)
    }

    /// A task that waits for a run (in any process) to end and gives its outcome.
    private func waitForRun(_ runId: String) -> Task<Result<JSONValue, any Error>, Never> {
        Task<Result<JSONValue, any Error>, Never> {
            do {
                guard let ended = try await self.endedRun(runId, within: nil) else {
                    return .failure(FlueError(.operationFailed, "the run \(runId) is gone"))
                }
                if ended.isError == true {
                    let error = ended.error ?? [:]
                    return .failure(
                        FlueError(
                            FlueError.Kind(rawValue: error["type"]?.stringValue ?? "error"),
                            error["message"]?.stringValue ?? "the run failed", details: error["details"]?.objectValue ?? [:]))
                }
                return .success(ended.result ?? .null)
            } catch {
                return .failure(error)
            }
        }
    }
}
