import CoreMetrics
import FluePersistence
import FlueRuntime
import Foundation
import Logging
import Tracing
import ServiceLifecycle
import Synchronization

extension Date {
    /// Now, truncated to whole milliseconds (the precision every store and the wire keep).
    package static var nowMilliseconds: Date {
        Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1000).rounded(.down) / 1000)
    }
}

/// A workflow and whether it has an HTTP route.
public struct WorkflowRegistration: Sendable {
    public var workflow: Workflow
    /// `true`: `POST /workflows/<name>` exists. `false`: the workflow can only be started from code
    /// (`Engine.startRun`, the `run` subcommand); its runs are still readable over HTTP.
    public var exposed: Bool

    /// A workflow with an HTTP route.
    public static func http(_ workflow: Workflow) -> WorkflowRegistration {
        WorkflowRegistration(workflow: workflow, exposed: true)
    }

    /// A workflow without an HTTP route.
    public static func `internal`(_ workflow: Workflow) -> WorkflowRegistration {
        WorkflowRegistration(workflow: workflow, exposed: false)
    }
}

/// The durable engine: runs workflows, admits agent input into durable submissions and runs
/// them, recovers work whose process died, and writes every event to the stores. It knows
/// nothing of HTTP: `FlueServer` serves it, and code can drive it directly (the example's
/// `run` subcommand does).
///
/// It is a `Service`: on graceful shutdown it sets ``shutdown`` (live readers and waiters
/// stop), refuses new work and waits, up to ``EngineConfiguration/shutdownGracePeriod``, for
/// running workflows and for agent submissions to reach a turn boundary.
///
/// Errors it throws: ``EngineError`` (shutting down, a wait abandoned) and `FlueError`
/// (unknown agent, bad instance id, dispatch-id conflict, session busy, and the runtime's own).
public final class Engine: Service {
    public let configuration: EngineConfiguration
    public let models: any ModelResolver
    public let stores: FlueStores
    public let logger: Logger
    /// Set once shutdown begins; readers and waiters listen to it.
    public let shutdown = ShutdownLatch()
    /// Identifies this process as the owner of the runs it starts.
    public let ownerId = "owner_" + UUID().uuidString.lowercased()
    package let workflows: [String: WorkflowRegistration]
    package let agents: [String: AgentRegistration]
    let coordinator: AgentCoordinator
    /// The host's event observers (``observe(_:)``).
    let observers = EventObservers()
    let metrics: MetricsDestination
    private let running = Mutex<[String: Task<Result<JSONValue, any Error>, Never>]>([:])
    /// Runs of this process being cancelled: they end errored with type `aborted`.
    private let cancelledRuns = Mutex<Set<String>>([])

    public init(
        workflows: [WorkflowRegistration], agents: [AgentRegistration] = [], models: any ModelResolver,
        stores: FlueStores = .inMemory(), configuration: EngineConfiguration = EngineConfiguration(),
        logger: Logger = Logger(label: "flue")
    ) throws {
        var byName: [String: WorkflowRegistration] = [:]
        for registration in workflows {
            guard byName[registration.workflow.name] == nil else {
                throw FlueError(.invalidDefinition, "two workflows are named \(registration.workflow.name)")
            }
            byName[registration.workflow.name] = registration
        }
        var agentsByName: [String: AgentRegistration] = [:]
        for registration in agents {
            guard agentsByName[registration.agent.name] == nil else {
                throw FlueError(.invalidDefinition, "two agents are named \(registration.agent.name)")
            }
            agentsByName[registration.agent.name] = registration
        }
        self.workflows = byName
        self.agents = agentsByName
        self.models = models
        self.stores = stores
        self.configuration = configuration
        self.logger = logger
        let metrics = MetricsDestination(configured: configuration.metricsFactory)
        self.metrics = metrics
        self.coordinator = AgentCoordinator(
            agents: agentsByName, stores: stores, models: models, configuration: configuration, logger: logger,
            ownerId: ownerId, observers: observers, metrics: metrics)
    }

    /// Sends the engine's counters to `factory` when its configuration names none (a server
    /// that serves `/metrics` for an engine made without it).
    package func reportMetrics(to factory: any MetricsFactory) {
        metrics.reported.withLock { $0 = factory }
    }

    /// Names of workflows with an HTTP route, sorted.
    public var exposedWorkflowNames: [String] { workflows.values.filter(\.exposed).map(\.workflow.name).sorted() }

    /// Names of agents with HTTP routes, sorted.
    public var exposedAgentNames: [String] { agents.values.filter(\.exposed).map(\.agent.name).sorted() }

    // MARK: agents

    /// Enqueues a prompt to agent instance `id` (what `POST /agents/:name/:id` does): a durable
    /// submission in the instance's FIFO, run by whichever process claims it. Returns a receipt at
    /// once; ``result(ofSubmission:agent:id:)`` waits for the answer. Throws `FlueError`
    /// (`invalid_payload` for a bad id, `agent_not_registered`, `session_busy`) or
    /// ``EngineError/shuttingDown(_:)``.
    ///
    /// `budget` limits this submission's turns and tokens (tightening the agent's ``Agent/budget``).
    /// With an `idempotencyKey` the submission id is derived from the instance and the key: the
    /// same key with the same input answers the original receipt and queues nothing; with a
    /// different input it throws `FlueError` `conflict`. Keys are kept as long as the submission.
    public func submitPrompt(
        agent: String, id: String, message: String, images: [ImageContent] = [], budget: Budget? = nil,
        idempotencyKey: String? = nil
    ) async throws -> SubmissionReceipt {
        try refuseWhileShuttingDown()
        return try await submitPrompt(
            to: try checkedKey(agent: agent, id: id), input: AgentInput.direct(message: message, images: images, budget: budget),
            idempotencyKey: idempotencyKey)
    }

    /// The run id an `Idempotency-Key` stands for on `workflow` (whether or not it was started):
    /// keys are scoped per workflow and, when a principal started the run, per principal.
    package func idempotentRunId(_ workflow: String, idempotencyKey: String, startedBy: String?) -> String {
        IdempotencyKey.derivedId("run", scope: [workflow] + (startedBy.map { ["principal", $0] } ?? []), key: idempotencyKey)
    }

    /// The submission id an `Idempotency-Key` stands for on instance `key` (whether or not it was admitted).
    package func idempotentSubmissionId(_ key: SessionKey, idempotencyKey: String) -> String {
        IdempotencyKey.derivedId("sub", scope: [key.agent, key.instanceId], key: idempotencyKey)
    }

    /// Enqueues a prompt whose address the caller checked with ``instanceKey(agent:id:exposedOnly:)``.
    package func submitPrompt(to key: SessionKey, input: JSONValue, idempotencyKey: String? = nil) async throws
        -> SubmissionReceipt
    {
        try refuseWhileShuttingDown()
        let submissionId = idempotencyKey.map { idempotentSubmissionId(key, idempotencyKey: $0) } ?? FlueID.make("sub")
        let admission: Admission
        let offset: StreamOffset
        do {
            (admission, offset) = try await coordinator.admit(key: key, kind: .direct, input: input, submissionId: submissionId)
        } catch let error as FlueError where error.kind == .conflict && idempotencyKey != nil {
            throw FlueError(
                .conflict, "Idempotency-Key \(idempotencyKey ?? "") was already used with a different body",
                details: ["idempotencyKey": .string(idempotencyKey ?? ""), "submissionId": .string(submissionId)])
        }
        // A replay answers the original receipt, offset included.
        let original = admission.record.streamOffset.flatMap(StreamOffset.init(parsing:)) ?? offset
        return SubmissionReceipt(
            submissionId: admission.record.submissionId, key: key, offset: original.description,
            acceptedAt: admission.record.acceptedAt)
    }

    /// Sends application input (a webhook delivery, a scheduled job) to agent instance `id`,
    /// exposed or not. Idempotent on `dispatchId`: the same id with the same input returns the
    /// original receipt; with a different input it fails with `conflict` (HTTP 409 where
    /// surfaced). Without an id, a fresh one is minted. The input reaches the model as a
    /// `<dispatch>` block with the JSON inside.
    public func dispatch(
        agent: String, id: String, input: JSONValue, dispatchId: String? = nil
    ) async throws -> DispatchReceipt {
        try refuseWhileShuttingDown()
        let key = try checkedKey(agent: agent, id: id)
        let dispatchId = dispatchId ?? FlueID.make("dsp")
        let (admission, _) = try await coordinator.admit(key: key, kind: .dispatch, input: input, submissionId: dispatchId)
        return DispatchReceipt(
            dispatchId: dispatchId, streamPath: AgentAddress.streamPath(key), acceptedAt: admission.record.acceptedAt)
    }

    /// Waits until a submission settles (in any process sharing the store) and returns how.
    /// Throws ``EngineError/shuttingDown(_:)`` if shutdown begins first (the submission goes on).
    public func result(ofSubmission submissionId: String, agent: String, id: String) async throws -> Outcome {
        let key = SessionKey(agent: agent, instanceId: id)
        let (record, _) = try await coordinator.waitForSettlement(
            submissionId, key: key, after: nil, shutdown: shutdown, abandon: nil)
        return Outcome(settled: record)
    }

    /// Waits until the prompt of `receipt` settles and returns how, with the stream offset just
    /// past its `submission_settled` event (what `?wait=result` answers). Throws
    /// ``EngineError/waitAbandoned`` once `abandon` (a sequence of its own, iterated once) finishes
    /// because the waiting client left, and ``EngineError/shuttingDown(_:)`` if shutdown begins
    /// first; the submission goes on either way.
    package func settlement(of receipt: SubmissionReceipt, abandon: AsyncStream<Void>?) async throws
        -> (outcome: Outcome, offset: StreamOffset)
    {
        let (record, offset) = try await coordinator.waitForSettlement(
            receipt.submissionId, key: receipt.key, after: StreamOffset(parsing: receipt.offset) ?? .start,
            shutdown: shutdown, abandon: abandon)
        return (Outcome(settled: record), offset)
    }

    /// Deletes the stored conversation of agent instance `id`; fails with `session_busy` while
    /// any of its submissions is queued or running. Admissions wait for the deletion to finish.
    public func deleteAgentSession(agent: String, id: String) async throws {
        let key = SessionKey(agent: agent, instanceId: id)
        guard try await stores.submissions.beginSessionDeletion(key) else {
            throw FlueError(.sessionBusy, "agent instance \(agent)/\(id) has submissions queued or running")
        }
        try await stores.sessions.deleteSession(key)
        try await stores.submissions.finishSessionDeletion(key)
    }

    /// Takes over expired submission leases now (also done at start and every scan interval).
    @discardableResult
    public func recoverInterruptedSubmissions() async -> Int {
        await coordinator.recoverExpiredLeases()
    }

    /// Number of agent submissions running in this process.
    public var runningSubmissionCount: Int { coordinator.runningCount }

    /// The one check of an agent address: the name's form, the instance id's form, and that the
    /// agent is registered (and exposed over HTTP, with `exposedOnly`). The HTTP routes and the
    /// code entry points (``submitPrompt(agent:id:message:images:)``, ``dispatch(agent:id:input:dispatchId:)``)
    /// all go through it; the coordinator trusts the key it gets.
    package func instanceKey(agent: String, id: String, exposedOnly: Bool) throws(AgentAddressProblem)
        -> SessionKey
    {
        guard AgentAddress.isValidAgentName(agent) else { throw .badAgentName }
        guard AgentAddress.isValidInstanceId(id) else { throw .badInstanceId }
        guard let registration = agents[agent], registration.exposed || !exposedOnly else { throw .unknownAgent }
        return SessionKey(agent: agent, instanceId: id)
    }

    /// ``instanceKey(agent:id:exposedOnly:)`` for code callers: any registered agent, `FlueError` on refusal.
    func checkedKey(agent: String, id: String) throws -> SessionKey {
        do {
            return try instanceKey(agent: agent, id: id, exposedOnly: false)
        } catch .badInstanceId {
            throw FlueError(.invalidPayload, "instance id \"\(id)\" must be 1–256 letters, digits or ._~:@+-")
        } catch {
            throw FlueError(.agentNotRegistered, "no agent named \(agent) is registered")
        }
    }

    func refuseWhileShuttingDown() throws {
        guard !shutdown.isSet else {
            throw EngineError.shuttingDown("The server is shutting down and accepts no new work.")
        }
    }

    /// The registered workflow, exposed or not.
    public func workflow(named name: String) -> Workflow? { workflows[name]?.workflow }

    /// Admits a run: creates its record (`active`) and stream, emits `run_start`, and starts the
    /// workflow in the background. `observe` sees every event as it is emitted (the CLI prints them).
    ///
    /// With an `idempotencyKey` (the `Idempotency-Key` header) the run id is derived from the
    /// workflow name and the key: the same key with the same payload answers the original run's
    /// receipt (its `completion` waits for that run, in whichever process runs it) and starts
    /// nothing; with a different payload it throws `FlueError` `conflict`. Keys are kept as long
    /// as the run record.
    public func startRun(
        _ workflow: Workflow, payload: ValidatedPayload, idempotencyKey: String? = nil, startedBy: String? = nil,
        observe: EventSink? = nil
    ) async throws -> RunReceipt {
        try refuseWhileShuttingDown()
        let runId = idempotencyKey.map { idempotentRunId(workflow.name, idempotencyKey: $0, startedBy: startedBy) }
            ?? FlueID.make("run")
        let path = "runs/\(runId)"
        let startedAt = Date.nowMilliseconds
        let runs = stores.runs
        let created = try await runs.createRun(
            RunRecord(
                runId: runId, workflowName: workflow.name, startedAt: startedAt, payload: payload.json, owner: ownerId,
                heartbeatAt: startedAt, startedBy: startedBy, traceContext: TraceContext.current()))
        if !created, let idempotencyKey {
            return try await replayedRun(runId, workflow: workflow, payload: payload, key: idempotencyKey)
        }
        try await stores.streams.createStream(path)
        let pipe = makePipe(runId: runId)
        let sink = observers.observing(.run(runId: runId, workflow: workflow.name), then: pipe.sink)
        // The usage of every model turn of the run (its agents, tasks and compactions), for `run_end`.
        let usage = Mutex<Usage?>(nil)
        let emitter = EventEmitter(base: EventCorrelation(runId: runId)) { event in
            if case .turn(let turn) = event.body { usage.withLock { $0 = ($0 ?? Usage()) + turn.usage } }
            sink(event)
            observe?(event)
        }
        emitter.emit(.runStart(.init(workflowName: workflow.name, payload: payload.json, startedAt: startedAt)))
        let environment = WorkflowEnvironment(
            runId: runId, events: emitter, models: models, sessions: stores.sessions)
        let logger = self.logger
        let task = Task<Result<JSONValue, any Error>, Never> {
            let started = ContinuousClock.now
            var result: Result<JSONValue, any Error>
            do {
                // A child of the starting request's span (the task inherits its context).
                result = .success(
                    try await withSpan("workflow \(workflow.name)", ofKind: .internal) { span in
                        span.attributes["flue.workflow.name"] = workflow.name
                        span.attributes["flue.run.id"] = runId
                        do {
                            return try await workflow.run(payload, environment: environment)
                        } catch {
                            GenAITracing.fail(span, error)
                            throw error
                        }
                    })
            } catch {
                if self.cancelledRuns.withLock({ $0.contains(runId) }) {
                    logger.info("workflow run cancelled", metadata: ["runId": "\(runId)"])
                } else {
                    logger.warning("workflow run failed", metadata: ["runId": "\(runId)", "error": "\(error)"])
                }
                result = .failure(error)
            }
            let outcome: Outcome
            switch result {
            case .success(let value): outcome = .completed(value)
            case .failure(let error):
                if self.cancelledRuns.withLock({ $0.contains(runId) }) {
                    let aborted = FlueError(.aborted, "the run was cancelled")
                    result = .failure(aborted)
                    outcome = .failed(aborted.json)
                } else {
                    outcome = .failed(describing: error)
                }
            }
            emitter.emit(
                .runEnd(
                    .init(outcome, durationMs: (ContinuousClock.now - started).wholeMilliseconds, usage: usage.withLock { $0 })))
            await pipe.drain()
            return result
        }
        running.withLock { $0[runId] = task }
        Task {
            _ = await task.value
            _ = self.running.withLock { $0.removeValue(forKey: runId) }
            _ = self.cancelledRuns.withLock { $0.remove(runId) }
        }
        return RunReceipt(runId: runId, streamPath: path, offset: StreamOffset.start.description, completion: task)
    }

    /// The task of a run this process executes.
    func runningTask(_ runId: String) -> Task<Result<JSONValue, any Error>, Never>? { running.withLock { $0[runId] } }

    /// Number of runs still executing in this process.
    public var runningCount: Int { running.withLock { $0.count } }

    /// The event pipe of a run: finalizes the record from `run_end` before it becomes visible,
    /// closes the stream after it.
    private func makePipe(runId: String) -> EventPipe {
        let runs = stores.runs
        let logger = self.logger
        return EventPipe(path: "runs/\(runId)", store: stores.streams, logger: logger) { event in
            guard case .runEnd(let end) = event.body else { return }
            do {
                try await runs.endRun(
                    runId, end.outcome, endedAt: Date.nowMilliseconds, durationMs: end.durationMs, usage: end.usage)
            } catch {
                logger.error("could not finalize run record", metadata: ["runId": "\(runId)", "error": "\(error)"])
            }
        } closesStream: { event in
            if case .runEnd = event.body { true } else { false }
        }
    }

    /// Serves until graceful shutdown: renews this process's run heartbeats, terminalizes
    /// runs orphaned by dead processes (at start and periodically) and removes old finished work
    /// (``EngineConfiguration/retention``). Then drains: live reads
    /// end, new runs are refused, running runs get up to `shutdownGracePeriod` to finish.
    public func run() async throws {
        logger.info(
            "flue engine running",
            metadata: ["owner": "\(ownerId)", "workflows": "\(workflows.count)", "agents": "\(agents.count)"])
        warnAboutUnreachableModels()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.heartbeatLoop() }
            group.addTask { await self.recoveryLoop() }
            group.addTask { await self.coordinator.run() }
            group.addTask { await self.runCancellationWatch() }
            group.addTask { await self.retentionLoop() }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await drain()
    }

    /// Logs a warning for each model the default (`MODEL_SPECIFIER`) or a registered agent names
    /// that cannot be reached as configured (no API key, an unknown provider): otherwise the first
    /// sign is every prompt failing. Workflows' agents are not known before they run.
    private func warnAboutUnreachableModels() {
        var named = Set(agents.values.flatMap { registration in
            ([registration.agent] + registration.agent.subagents).compactMap(\.model)
        })
        if let fallback = models.defaultModel { named.insert(fallback) }
        for model in named.sorted(by: { $0.description < $1.description }) {
            do {
                _ = try models.client(for: model)
            } catch {
                logger.warning(
                    "model not reachable as configured; operations using it will fail",
                    metadata: ["model": "\(model)", "error": "\(error)"])
            }
        }
    }

    private func heartbeatLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.runHeartbeatInterval)
            if Task.isCancelled { return }
            do {
                try await stores.runs.heartbeatRuns(owner: ownerId, at: Date.nowMilliseconds)
            } catch {
                logger.warning("could not renew run heartbeats", metadata: ["error": "\(error)"])
            }
            // A fallback for a missed notification.
            await applyRunCancelRequests()
        }
    }

    /// Applies run cancel requests as soon as any process announces one.
    private func runCancellationWatch() async {
        for await _ in stores.streams.subscribe(ControlPath.cancellations) {
            if Task.isCancelled { return }
            await applyRunCancelRequests()
        }
    }

    /// Cancels every run of this process that has a cancel request.
    func applyRunCancelRequests() async {
        let runIds = running.withLock { Array($0.keys) }
        for runId in runIds where !cancelledRuns.withLock({ $0.contains(runId) }) {
            guard let record = try? await stores.runs.getRun(runId), record.cancelRequestedAt != nil else { continue }
            cancelLocalRun(runId)
        }
    }

    /// Cancels a run's task in this process; false when this process does not run it.
    @discardableResult
    func cancelLocalRun(_ runId: String) -> Bool {
        guard let task = running.withLock({ $0[runId] }) else { return false }
        let first = cancelledRuns.withLock { $0.insert(runId).inserted }
        if first {
            logger.info("cancelling a run", metadata: ["runId": "\(runId)"])
            task.cancel()
        }
        return true
    }

    private func recoveryLoop() async {
        while !Task.isCancelled {
            _ = await recoverOrphanedRuns()
            try? await Task.sleep(for: configuration.recoveryScanInterval)
        }
    }

    /// Terminalizes runs left `active` by processes that stopped sending heartbeats: each gets
    /// `run_resume`, then an errored `run_end` (`run_interrupted`), its record is finalized and
    /// its stream closed, so no live reader waits forever. Returns the recovered run ids.
    @discardableResult
    public func recoverOrphanedRuns() async -> [String] {
        let now = Date.nowMilliseconds
        let lease = configuration.runLease
        let staleBefore = now.addingTimeInterval(-lease.timeInterval)
        let orphans: [RunRecord]
        do {
            orphans = try await stores.runs.claimStaleRuns(staleBefore: staleBefore, newOwner: ownerId, now: now, limit: 100)
        } catch {
            logger.warning("orphaned-run scan failed", metadata: ["error": "\(error)"])
            return []
        }
        var recovered: [String] = []
        for orphan in orphans where running.withLock({ $0[orphan.runId] == nil }) {
            do {
                try await terminalize(orphan)
                recovered.append(orphan.runId)
                Counter(label: "flue_workflow_runs_orphaned_total", factory: metrics.factory).increment()
            } catch {
                logger.error("could not terminalize orphaned run", metadata: ["runId": "\(orphan.runId)", "error": "\(error)"])
            }
        }
        if !recovered.isEmpty { logger.notice("terminalized orphaned runs", metadata: ["runIds": "\(recovered)"]) }
        return recovered
    }

    /// Ends an orphaned run in a span of a new trace linked to the run's own (this process ends
    /// a run another one started).
    private func terminalize(_ orphan: RunRecord) async throws {
        try await TraceContext.withSpan("workflow \(orphan.workflowName)", continuing: orphan.traceContext, continues: false) {
            span in
            span.attributes["flue.workflow.name"] = orphan.workflowName
            span.attributes["flue.run.id"] = orphan.runId
            span.attributes["flue.run.interrupted"] = true
            try await terminalizeRecord(orphan)
        }
    }

    private func terminalizeRecord(_ orphan: RunRecord) async throws {
        let path = "runs/\(orphan.runId)"
        try await stores.streams.createStream(path)
        let meta = try await stores.streams.meta(path)
        let durationMs = Int(Date().timeIntervalSince(orphan.startedAt) * 1000)
        // A run cancelled while its owner was gone ends as cancelled.
        let error: JSONValue =
            orphan.cancelRequestedAt != nil
            ? FlueError(.aborted, "the run was cancelled", details: ["previousOwner": .string(orphan.owner ?? "unknown")]).json
            : [
                "type": "run_interrupted",
                "message": "The process running this run stopped before the run finished.",
                "details": ["previousOwner": .string(orphan.owner ?? "unknown")],
            ]
        if meta?.closed == true {
            try await stores.runs.endRun(orphan.runId, .failed(error), endedAt: Date.nowMilliseconds, durationMs: durationMs)
            return
        }
        let pipe = makePipe(runId: orphan.runId)
        let emitter = EventEmitter(
            base: EventCorrelation(runId: orphan.runId), startIndex: Int(meta?.tail.eventCount ?? 0),
            sink: observers.observing(.run(runId: orphan.runId, workflow: orphan.workflowName), then: pipe.sink))
        emitter.emit(
            .runResume(
                .init(
                    workflowName: orphan.workflowName, startedAt: orphan.startedAt,
                    reason: "the process running this run stopped; this process terminalizes it")))
        emitter.emit(.runEnd(.init(result: nil, isError: true, error: error, durationMs: durationMs)))
        await pipe.drain()
    }

    /// Ends live reads, stops agent submissions at their next turn boundary (leaving them for
    /// the next process) and waits for running workflows, each bounded by the grace period.
    public func drain() async {
        shutdown.begin()
        async let submissionsStopped: Void = coordinator.drain(grace: configuration.shutdownGracePeriod)
        await drainWorkflows()
        await submissionsStopped
    }

    private func drainWorkflows() async {
        let tasks = running.withLock { Array($0.values) }
        logger.info("shutting down", metadata: ["runningWorkflows": "\(tasks.count)"])
        guard !tasks.isEmpty else { return }
        _ = await FlueEngine.drain(tasks, grace: configuration.shutdownGracePeriod) {
            logger.warning("grace period over; cancelling running workflows", metadata: ["count": "\(tasks.count)"])
        }
    }
}

/// Where the engine's counters go, shared by the engine and its coordinator:
/// ``EngineConfiguration/metricsFactory``, else the factory a server gave with
/// ``Engine/reportMetrics(to:)``, else swift-metrics' global factory.
final class MetricsDestination: Sendable {
    let configured: (any MetricsFactory)?
    let reported = Mutex<(any MetricsFactory)?>(nil)

    init(configured: (any MetricsFactory)?) { self.configured = configured }

    var factory: any MetricsFactory { configured ?? reported.withLock { $0 } ?? MetricsSystem.factory }
}
