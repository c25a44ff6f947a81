import CoreMetrics
import FluePersistence
import FlueRuntime
import Foundation
import Logging
import Tracing
import Synchronization

/// Runs durable agent submissions: admits them into one FIFO per session, claims each runnable
/// head under a lease (renewed while the attempt runs), runs it through the agent loop with a
/// turn journal, settles it exactly once, and recovers submissions whose owner died.
///
/// Different instances run in parallel up to ``EngineConfiguration/agentConcurrency``; the store
/// guarantees that one session never runs two submissions at once, across processes.
final class AgentCoordinator: Sendable {
    let agents: [String: AgentRegistration]
    let stores: FlueStores
    let models: any ModelResolver
    let configuration: EngineConfiguration
    let logger: Logger
    let ownerId: String
    let observers: EventObservers
    let metrics: MetricsDestination
    private let wakes: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let active = Mutex<[String: ActiveAttempt]>([:])
    private let stopping = Mutex(false)

    /// One attempt running in this process.
    final class ActiveAttempt: Sendable {
        let attemptId: String
        let record: SubmissionRecord
        let control = AttemptControl()
        /// The whole attempt (awaited by shutdown).
        let task = Mutex<Task<Void, Never>?>(nil)
        /// The model and tool work of the attempt: what a cancel cancels. The attempt's own
        /// task goes on to settle, so its store writes are never cancelled with the work.
        let work = Mutex<Task<PromptResponse, any Error>?>(nil)
        /// The attempt's emitter once its stream is open: queued siblings cancelled while it
        /// runs get their `submission_settled` through it (one index sequence per stream).
        let emitter = Mutex<EventEmitter?>(nil)
        /// Siblings whose `submission_settled` this attempt wrote.
        let announced = Mutex<Set<String>>([])
        init(attemptId: String, record: SubmissionRecord) {
            self.attemptId = attemptId
            self.record = record
        }
    }

    init(
        agents: [String: AgentRegistration], stores: FlueStores, models: any ModelResolver,
        configuration: EngineConfiguration, logger: Logger, ownerId: String, observers: EventObservers,
        metrics: MetricsDestination
    ) {
        self.metrics = metrics
        self.observers = observers
        self.agents = agents
        self.stores = stores
        self.models = models
        self.configuration = configuration
        self.logger = logger
        self.ownerId = ownerId
        (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// The agents this process runs: it claims and recovers only their submissions.
    private var agentNames: Set<String> { Set(agents.keys) }

    /// Attempts running in this process.
    var runningCount: Int { active.withLock { $0.count } }

    // MARK: admission

    /// Queues a submission and wakes the claim loop. The offset is the instance stream's tail
    /// taken before admission; the stream exists from this moment on. `key` was checked by
    /// ``Engine/instanceKey(agent:id:exposedOnly:)``.
    func admit(
        key: SessionKey, kind: SubmissionKind, input: JSONValue, submissionId: String
    ) async throws -> (Admission, offset: StreamOffset) {
        let offset = try await ensureStream(AgentAddress.streamPath(key))
        let admission: Admission
        do {
            admission = try await stores.submissions.admit(
                NewSubmission(
                    submissionId: submissionId, key: key, kind: kind, input: input, acceptedAt: Date.nowMilliseconds,
                    maxAttempts: configuration.submissionMaxAttempts, timeout: configuration.submissionTimeout,
                    streamOffset: offset.description, traceContext: TraceContext.current()))
        } catch SubmissionStoreError.conflict(let id) {
            throw FlueError(
                .conflict, "dispatch id \(id) was already used with a different input",
                details: ["dispatchId": .string(id)])
        } catch SubmissionStoreError.sessionDeleting(let key) {
            throw FlueError(.sessionBusy, "session \(key.submissionPath) is being deleted; retry after the deletion finishes")
        }
        wake.yield()
        return (admission, offset)
    }

    /// Waits until the submission is settled and its `submission_settled` event is stored, woken
    /// by appends to the instance's stream (from any process sharing the store) and re-checking
    /// every second. Returns the settled record and the offset just past that event, found by
    /// reading the stream from `offset` (the admission offset): the answer and the offset come
    /// from the same settlement. Should the event not appear within a few seconds of the
    /// settlement (its append failed), or without `offset`, the offset is the stream's tail.
    ///
    /// Stops waiting (the submission goes on) when shutdown begins (``EngineError/shuttingDown(_:)``)
    /// or `abandon` finishes (``EngineError/waitAbandoned``).
    func waitForSettlement(
        _ submissionId: String, key: SessionKey, after offset: StreamOffset?, shutdown: ShutdownLatch,
        abandon: AsyncStream<Void>?
    ) async throws -> (SubmissionRecord, offset: StreamOffset) {
        let path = AgentAddress.streamPath(key)
        let changes = stores.streams.subscribe(path)
        var cursor = offset ?? .start
        var settled: (record: SubmissionRecord, at: ContinuousClock.Instant)?
        /// The settlement once both the record and its event are stored (or the event is overdue).
        func check() async throws -> (SubmissionRecord, offset: StreamOffset)? {
            if settled == nil, let record = try await stores.submissions.submission(submissionId), record.status.isSettled {
                settled = (record, .now)
            }
            guard let (record, at) = settled else { return nil }
            // Only a completed submission's answer carries an offset (a failure is an error envelope).
            if offset != nil, record.status == .completed, let eventOffset = try await settledEventOffset(submissionId, path: path, cursor: &cursor) {
                return (record, eventOffset)
            }
            let wantsEvent = offset != nil && record.status == .completed
            guard !wantsEvent || ContinuousClock.now - at >= Self.settledEventPatience else { return nil }
            if wantsEvent { logger.warning("submission settled without a stored submission_settled event", metadata: ["submissionId": "\(submissionId)"]) }
            return (record, try await stores.streams.meta(path)?.tail ?? cursor)
        }
        return try await withLiveWakes(
            changes: changes, shutdown: shutdown.signal(), clientGone: abandon, tick: .seconds(1)
        ) { wakes in
            if let settlement = try await check() { return settlement }
            for await wake in wakes {
                if case .clientGone = wake { throw EngineError.waitAbandoned }
                // Checked as state too: a full wake buffer may have dropped the shutdown wake.
                if case .shutdown = wake { break }
                if shutdown.isSet { break }
                if let settlement = try await check() { return settlement }
            }
            try Task.checkCancellation()
            throw EngineError.shuttingDown(
                "The server is shutting down. The submission \(submissionId) is durable and continues; read its events from the stream.")
        }
    }

    /// How long a waiter gives a settled submission's `submission_settled` event to appear.
    static let settledEventPatience: Duration = .seconds(5)

    /// Reads the stream after `cursor` (advancing it) for the `submission_settled` event of
    /// `submissionId`; returns that event's offset.
    private func settledEventOffset(_ submissionId: String, path: String, cursor: inout StreamOffset) async throws
        -> StreamOffset?
    {
        let marker = Data(#""submission_settled""#.utf8)
        while true {
            let page = try await stores.streams.read(path, after: cursor, limit: StreamReadLimit.maximum)
            for event in page.events where event.data.range(of: marker) != nil {
                let json = try? JSONValue(parsing: event.data)
                if json?["type"] == "submission_settled", json?["submissionId"]?.stringValue == submissionId {
                    return event.offset
                }
            }
            cursor = page.nextOffset
            if page.upToDate || page.events.isEmpty { return nil }
        }
    }

    // MARK: cancellation

    /// Cancels a submission of instance `key` (any session): settles a queued one `aborted` at
    /// once (emitting its `submission_settled`), or asks the process running it to stop it (this
    /// one directly, others through ``ControlPath/cancellations``). `nil` when the instance has no
    /// such submission.
    func cancel(_ submissionId: String, of key: SessionKey) async throws -> CancelRequest? {
        guard let existing = try await stores.submissions.submission(submissionId),
            existing.key.agent == key.agent, existing.key.instanceId == key.instanceId
        else { return nil }
        guard let request = try await stores.submissions.requestCancel(submissionId, at: Date.nowMilliseconds) else {
            return nil
        }
        switch request {
        case .aborted(let record):
            // Its `submission_settled` goes on the instance stream in that stream's one index
            // sequence: written here when nothing of the instance runs, else by the running
            // attempt's owner (this process directly, another through the control path; the
            // owner checks again after it settles, so the event is never lost).
            let unsettled = try await unsettled(of: key)
            if let running = unsettled.first(where: { $0.status == .running }) {
                if let attempt = active.withLock({ $0[running.submissionId] }) {
                    await announceCancelledSiblings(of: attempt)
                } else {
                    stores.streams.announce(ControlPath.cancellations)
                }
            } else {
                let (emitter, pipe) = try await openStream(record)
                emitter.emit(.submissionSettled(.init(outcome: .aborted, error: record.error)))
                await pipe.drain()
            }
            wake.yield()
        case .requested:
            if let attempt = active.withLock({ $0[submissionId] }) { abort(attempt) }
            stores.streams.announce(ControlPath.cancellations)
        case .alreadySettled:
            break
        }
        return request
    }

    /// The unsettled submissions of an instance (every session), oldest first.
    func unsettled(of key: SessionKey) async throws -> [SubmissionRecord] {
        var found: [SubmissionRecord] = []
        var before: Int64?
        while true {
            let page = try await stores.submissions.submissions(
                agent: key.agent, instanceId: key.instanceId, before: before, limit: 500)
            found += page.filter { !$0.status.isSettled }
            guard page.count == 500, let last = page.last else { break }
            before = last.sequence
        }
        return found.reversed()
    }

    // MARK: loops

    /// Claims work as it arrives, renews leases and recovers expired ones, until cancelled.
    func run() async {
        guard !agents.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.leaseRenewalLoop() }
            group.addTask { await self.recoveryLoop() }
            group.addTask { await self.cancellationWatch() }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.configuration.claimPollInterval)
                    self.wake.yield()
                }
            }
            group.addTask {
                for await _ in self.wakes {
                    if Task.isCancelled { return }
                    await self.claimRunnable()
                }
            }
            await group.waitForAll()
        }
    }

    private func leaseRenewalLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.submissionLeaseRenewal)
            if Task.isCancelled { return }
            await renewLeases()
        }
    }

    private func renewLeases() async {
        let attempts = active.withLock { $0.values.map(\.attemptId) }
        guard !attempts.isEmpty else { return }
        // A fallback for a missed notification: cancel requests are checked at every renewal too.
        await applyCancelRequests()
        do {
            try await stores.submissions.renewLeases(
                owner: ownerId, attemptIds: attempts, until: Date().addingTimeInterval(configuration.submissionLease.timeInterval))
        } catch {
            logger.warning("could not renew submission leases", metadata: ["error": "\(error)"])
        }
    }

    /// Applies cancel requests as soon as any process announces one on ``ControlPath/cancellations``.
    private func cancellationWatch() async {
        for await _ in stores.streams.subscribe(ControlPath.cancellations) {
            if Task.isCancelled { return }
            // Also a decided approval elsewhere: its submission may be claimed now.
            wake.yield()
            await applyCancelRequests()
        }
    }

    /// Cancels every attempt of this process whose submission has a cancel request.
    func applyCancelRequests() async {
        let attempts = active.withLock { $0 }
        for attempt in attempts.values where !attempt.control.abortRequested {
            await announceCancelledSiblings(of: attempt)
        }
        for (submissionId, attempt) in attempts where !attempt.control.abortRequested {
            guard let record = try? await stores.submissions.submission(submissionId),
                record.cancelRequestedAt != nil, record.attemptId == attempt.attemptId
            else { continue }
            abort(attempt)
        }
    }

    /// Writes, through `attempt`'s emitter, the `submission_settled` of every later submission of
    /// its instance that was cancelled while queued and has no such event yet.
    func announceCancelledSiblings(of attempt: ActiveAttempt) async {
        guard let emitter = attempt.emitter.withLock({ $0 }) else { return }
        await announceCancelledSiblings(after: attempt.record, emitter: emitter, announced: attempt.announced)
    }

    /// ``announceCancelledSiblings(of:)`` for the submissions admitted after `own`, through
    /// `emitter`; `announced` remembers what was written.
    func announceCancelledSiblings(after own: SubmissionRecord, emitter: EventEmitter, announced: borrowing Mutex<Set<String>>) async {
        let path = AgentAddress.streamPath(own.key)
        do {
            // Every submission admitted after this one, a page at a time (newest first).
            var later: [SubmissionRecord] = []
            var before: Int64?
            while true {
                let page = try await stores.submissions.submissions(
                    agent: own.key.agent, instanceId: own.key.instanceId, before: before, limit: 200)
                later += page.filter { $0.sequence > own.sequence }
                guard page.count == 200, let last = page.last, last.sequence > own.sequence else { break }
                before = last.sequence
            }
            for sibling in later.reversed() where sibling.status == .aborted {
                guard !announced.withLock({ $0.contains(sibling.submissionId) }) else { continue }
                var cursor = sibling.streamOffset.flatMap(StreamOffset.init(parsing:)) ?? .start
                let written = try await settledEventOffset(sibling.submissionId, path: path, cursor: &cursor) != nil
                guard announced.withLock({ $0.insert(sibling.submissionId).inserted }), !written else { continue }
                emitter.emit(
                    .submissionSettled(.init(outcome: .aborted, error: sibling.error)),
                    replacingCorrelation: Self.correlation(of: sibling))
            }
        } catch {
            logger.warning(
                "could not announce cancelled submissions", metadata: ["instance": "\(own.key.submissionPath)", "error": "\(error)"])
        }
    }

    /// The correlation fields of a submission's events.
    static func correlation(of record: SubmissionRecord) -> EventCorrelation {
        EventCorrelation(
            instanceId: record.key.instanceId, dispatchId: record.kind == .dispatch ? record.submissionId : nil,
            submissionId: record.kind == .direct ? record.submissionId : nil, harness: "default",
            session: record.key.session)
    }

    /// Stops an attempt now: its model stream and tools are cancelled, and it settles `aborted`.
    private func abort(_ attempt: ActiveAttempt) {
        guard attempt.control.requestAbort() else { return }
        attempt.work.withLock { $0 }?.cancel()
    }

    private func recoveryLoop() async {
        while !Task.isCancelled {
            await recoverExpiredLeases()
            await expireApprovals()
            try? await Task.sleep(for: configuration.recoveryScanInterval)
        }
    }

    private var isStopping: Bool { stopping.withLock { $0 } }

    /// Claims runnable session heads while there is capacity.
    func claimRunnable() async {
        while !isStopping {
            let free = configuration.agentConcurrency - runningCount
            guard free > 0 else { return }
            // A page a little larger than the free slots (saturating: AGENT_CONCURRENCY may be huge).
            let (sum, overflow) = free.addingReportingOverflow(16)
            let page = overflow ? Int.max : sum
            let heads: [SubmissionRecord]
            do {
                heads = try await stores.submissions.runnableHeads(agents: agentNames, limit: page)
            } catch {
                logger.warning("could not list runnable submissions", metadata: ["error": "\(error)"])
                return
            }
            var started = 0
            for head in heads {
                guard !isStopping, runningCount < configuration.agentConcurrency else { return }
                let attemptId = FlueID.make("att")
                let now = Date()
                do {
                    guard
                        let claimed = try await stores.submissions.claim(
                            head.submissionId, owner: ownerId, attemptId: attemptId, now: now,
                            leaseUntil: now.addingTimeInterval(configuration.submissionLease.timeInterval))
                    else { continue }
                    _ = try? await stores.submissions.markAttempt(
                        claimed.submissionId, AttemptMarker(attempt: claimed.attemptCount, owner: ownerId, at: now))
                    start(claimed, repair: [])
                    started += 1
                } catch {
                    logger.warning("could not claim a submission", metadata: ["submissionId": "\(head.submissionId)", "error": "\(error)"])
                }
            }
            // Another pass only when the page was full and something was claimed: more may wait.
            guard started > 0, heads.count >= page else { return }
        }
    }

    /// Runs an attempt in the background, tracked until it ends.
    private func start(_ record: SubmissionRecord, repair: [Message], recoveryReason: String? = nil) {
        guard let attemptId = record.attemptId else { return }
        let attempt = ActiveAttempt(attemptId: attemptId, record: record)
        // Cancelled before this claim (a requeued submission keeps its mark): it settles aborted.
        if record.cancelRequestedAt != nil { _ = attempt.control.requestAbort() }
        active.withLock { $0[record.submissionId] = attempt }
        let task = Task {
            await self.process(record, attempt: attempt, repair: repair, recoveryReason: recoveryReason)
            self.active.withLock { active in
                if active[record.submissionId] === attempt { active[record.submissionId] = nil }
            }
            self.wake.yield()
        }
        attempt.task.withLock { $0 = task }
    }

    // MARK: processing

    /// Creates the stream unless it exists; returns its tail.
    private func ensureStream(_ path: String) async throws -> StreamOffset {
        if let meta = try await stores.streams.meta(path) { return meta.tail }
        try await stores.streams.createStream(path)
        return try await stores.streams.meta(path)?.tail ?? .start
    }

    /// The instance's stream with an emitter whose indices continue the stream's sequence.
    private func openStream(_ record: SubmissionRecord) async throws -> (EventEmitter, EventPipe) {
        let path = AgentAddress.streamPath(record.key)
        let tail = try await ensureStream(path)
        let pipe = EventPipe(path: path, store: stores.streams, logger: logger)
        let correlation = Self.correlation(of: record)
        let sink = observers.observing(.instance(agent: record.key.agent, id: record.key.instanceId), then: pipe.sink)
        return (EventEmitter(base: correlation, startIndex: Int(tail.eventCount), sink: sink), pipe)
    }

    /// One attempt in an `invoke_agent {agent}` span: the first continues the admitting request's
    /// trace; a recovered one starts a trace linked to it.
    private func process(
        _ record: SubmissionRecord, attempt: ActiveAttempt, repair: [Message], recoveryReason: String?
    ) async {
        await TraceContext.withSpan(
            "invoke_agent \(record.key.agent)", continuing: record.traceContext,
            continues: recoveryReason == nil && record.attemptCount <= 1
        ) { span in
            span.attributes[GenAITracing.Attribute.operationName] = "invoke_agent"
            span.attributes[GenAITracing.Attribute.agentName] = record.key.agent
            span.attributes[GenAITracing.Attribute.conversationId] = record.key.instanceId
            span.attributes["flue.submission.id"] = record.submissionId
            span.attributes["flue.submission.attempt"] = record.attemptCount
            await processAttempt(record, attempt: attempt, repair: repair, recoveryReason: recoveryReason)
        }
    }

    /// One attempt: opens the session, applies the input (or repairs and resumes the history),
    /// runs the agent loop with the journal, settles. A stop request (shutdown) leaves the
    /// submission unsettled with its lease released, for the next process to resume.
    private func processAttempt(
        _ record: SubmissionRecord, attempt: ActiveAttempt, repair: [Message], recoveryReason: String?
    ) async {
        guard let registration = agents[record.key.agent] else { return }
        let id = record.submissionId
        let control = attempt.control
        var metadata: Logger.Metadata = ["submissionId": "\(id)", "attempt": "\(record.attemptCount)"]
        metadata["instance"] = "\(record.key.submissionPath)"
        let emitter: EventEmitter
        let pipe: EventPipe
        do {
            (emitter, pipe) = try await openStream(record)
        } catch {
            logger.error("could not open the agent stream; the submission is left for recovery", metadata: metadata)
            _ = try? await stores.submissions.releaseLease(id, attemptId: attempt.attemptId, at: Date())
            return
        }
        attempt.emitter.withLock { $0 = emitter }
        if let recoveryReason {
            emitter.emit(.log(.init(level: .warn, message: "resuming an interrupted submission: \(recoveryReason)")))
        }
        let journal = SubmissionJournalWriter(
            store: stores.submissions, record: record, attemptId: attempt.attemptId, control: control,
            chunkInterval: configuration.streamChunkInterval, logger: logger)
        let harness = Harness(
            agent: registration.agent, instanceId: record.key.instanceId, models: models, store: stores.sessions,
            events: emitter)
        let work = Task<PromptResponse, any Error> {
            let session = try await harness.session(record.key.session)
            if !repair.isEmpty { try await session.appendRecovered(repair) }
            var options = PromptOptions(inputId: id, journal: journal)
            options.budget = AgentInput.budget(for: record)
            options.approvals = RecordApprovalGate(record.approvals)
            // A resumed submission (after an approval or a crash) counts what it spent before.
            let snapshot = await session.currentSnapshot
            if let input = snapshot.messageIndex(ofInput: id), input < snapshot.messages.count {
                var turns = 0
                var usage = Usage()
                for case .assistant(let assistant) in snapshot.messages[(input + 1)...] {
                    turns += 1
                    usage += assistant.usage
                }
                options.budgetSpent = Budget.Spent(turns: turns, tokens: usage.totalTokens, cost: usage.cost?.total ?? 0)
            }
            if await session.currentSnapshot.messageIndex(ofInput: id) == nil {
                // Calls left without results by an earlier submission (cancelled while its calls
                // awaited approval) are answered first, so the history stays valid.
                if case .assistant(let dangling)? = await session.currentSnapshot.messages.last, !dangling.toolCalls.isEmpty {
                    try await session.appendRecovered(SubmissionRecovery.notRunResults(for: dangling))
                }
                let (text, images) = AgentInput.message(for: record)
                options.images = images
                return try await session.prompt(text, options: options)
            }
            return try await session.resume(options: options)
        }
        attempt.work.withLock { $0 = work }
        // A cancel that arrived before the work existed.
        if control.abortRequested { work.cancel() }
        // Shutdown past its grace period cancels the attempt's task: that reaches the work too.
        let result = await withTaskCancellationHandler { await work.result } onCancel: { work.cancel() }
        let outcome: Outcome
        do {
            outcome = .completed(try JSONValue(encoding: try result.get()))
        } catch {
            if control.abortRequested && !control.superseded {
                await settleAborted(record, attempt: attempt, emitter: emitter, pipe: pipe)
                return
            }
            if let pause = error as? ApprovalRequired, !control.superseded {
                await awaitApproval(record, attempt: attempt, pause.calls, emitter: emitter, pipe: pipe)
                return
            }
            if control.stopRequested || control.superseded {
                await pipe.drain()
                if !control.superseded {
                    _ = try? await stores.submissions.releaseLease(id, attemptId: attempt.attemptId, at: Date())
                    logger.info("submission stopped at a turn boundary; left for the next process", metadata: metadata)
                }
                return
            }
            if case PersistenceError.unavailable = error {
                await pipe.drain()
                logger.error("the store failed during a submission; it is left for recovery", metadata: metadata)
                _ = try? await stores.submissions.releaseLease(id, attemptId: attempt.attemptId, at: Date())
                return
            }
            // A cancellation nobody asked for (none should reach here) is not reported as a cancel.
            outcome = .failed(
                error is CancellationError
                    ? FlueError(.submissionInterrupted, "the submission was interrupted").json : FlueError.describe(error))
        }
        await settle(record, attemptId: attempt.attemptId, outcome, emitter: emitter, pipe: pipe) {
            await self.announceCancelledSiblings(of: attempt)
        }
    }

    /// Parks the submission until humans decide on `calls` (the lease is released: no process
    /// waits), then announces each call with `approval_requested`.
    private func awaitApproval(
        _ record: SubmissionRecord, attempt: ActiveAttempt, _ calls: [ToolCall], emitter: EventEmitter, pipe: EventPipe
    ) async {
        let now = Date.nowMilliseconds
        let expiresAt = now.addingTimeInterval(configuration.approvalTimeout.timeInterval)
        let known = Set(record.approvals.map(\.callId))
        let added = calls.filter { !known.contains($0.id) }.map {
            ToolApprovalRecord(callId: $0.id, tool: $0.name, arguments: $0.arguments, requestedAt: now, expiresAt: expiresAt)
        }
        let parked: Bool
        do {
            parked = try await stores.submissions.awaitApproval(
                record.submissionId, attemptId: attempt.attemptId, approvals: record.approvals + added)
        } catch {
            logger.error(
                "could not park a submission for approval; it is left for recovery",
                metadata: ["submissionId": "\(record.submissionId)", "error": "\(error)"])
            _ = try? await stores.submissions.releaseLease(record.submissionId, attemptId: attempt.attemptId, at: Date())
            await pipe.drain()
            return
        }
        if parked {
            for approval in added {
                emitter.emit(
                    .approvalRequested(
                        .init(
                            callId: approval.callId, tool: approval.tool, arguments: approval.arguments,
                            expiresAt: FlueEvent.formatTimestamp(approval.expiresAt))))
            }
            logger.info(
                "submission awaits approval", metadata: ["submissionId": "\(record.submissionId)", "calls": "\(added.map(\.callId))"])
        }
        await pipe.drain()
    }

    /// Records a decision on a pending call and announces it (`approval_decided`); once no call
    /// of the submission is pending it is queued again and the claim loops (of every process)
    /// are woken. `nil` when the submission has no such call.
    func decide(
        _ record: SubmissionRecord, callId: String, decision: ToolApprovalRecord.Decision, reason: String?
    ) async throws -> ApprovalDecisionResult? {
        guard let result = try await stores.submissions.decideApproval(
            record.submissionId, callId: callId, decision: decision, reason: reason, at: Date.nowMilliseconds)
        else { return nil }
        guard case .decided(let decided) = result else { return result }
        // Nobody runs the instance while the submission waits (it blocks its session's queue).
        let (emitter, pipe) = try await openStream(decided)
        emitter.emit(.approvalDecided(.init(callId: callId, decision: decision.rawValue, reason: reason)))
        await pipe.drain()
        if decided.status == .queued {
            wake.yield()
            stores.streams.announce(ControlPath.cancellations)
        }
        return result
    }

    /// Denies, as expired, every pending call whose time ran out.
    private func expireApprovals() async {
        let waiting: [SubmissionRecord]
        do {
            waiting = try await stores.submissions.awaitingApproval(agents: agentNames, limit: 100)
        } catch {
            logger.warning("approval expiry scan failed", metadata: ["error": "\(error)"])
            return
        }
        let now = Date()
        for record in waiting {
            for approval in record.approvals where approval.decision == nil && approval.expiresAt < now {
                do {
                    _ = try await decide(record, callId: approval.callId, decision: .deny, reason: "expired")
                    logger.notice(
                        "a tool call's approval expired; it is denied",
                        metadata: ["submissionId": "\(record.submissionId)", "callId": "\(approval.callId)"])
                } catch {
                    logger.warning("could not expire an approval", metadata: ["callId": "\(approval.callId)", "error": "\(error)"])
                }
            }
        }
    }

    /// The outcome of a cancelled submission (`aborted`).
    static func abortedOutcome(_ record: SubmissionRecord) -> Outcome {
        var details: [String: JSONValue] = [:]
        if let at = record.cancelRequestedAt { details["cancelRequestedAt"] = .string(FlueEvent.formatTimestamp(at)) }
        return .failed(FlueError(.aborted, "the submission was cancelled", details: details).json)
    }

    /// Repairs the history a cancelled attempt left (``SubmissionRecovery/cancellationRepair(_:history:partialOutput:)``)
    /// and settles the submission `aborted`.
    private func settleAborted(
        _ record: SubmissionRecord, attempt: ActiveAttempt, emitter: EventEmitter, pipe: EventPipe
    ) async {
        let current = (try? await stores.submissions.submission(record.submissionId)) ?? record
        do {
            // The repair is computed from, and appended to, the stored history (the cancelled
            // work's in-memory copy may hold a message whose save was cancelled).
            let history = try await stores.sessions.loadSession(record.key)
            var partial: [String] = []
            if current.journal?.phase == .modelRequestStarted, let key = current.journal?.streamKey {
                partial = try await stores.submissions.streamChunks(record.submissionId, streamKey: key)
            }
            let repair = SubmissionRecovery.cancellationRepair(current, history: history, partialOutput: partial)
            if !repair.isEmpty, let registration = agents[record.key.agent] {
                let fresh = Harness(
                    agent: registration.agent, instanceId: record.key.instanceId, models: models, store: stores.sessions,
                    events: emitter)
                try await fresh.session(record.key.session).appendRecovered(repair)
            }
        } catch {
            logger.warning(
                "could not repair the history of a cancelled submission",
                metadata: ["submissionId": "\(record.submissionId)", "error": "\(error)"])
        }
        await settle(current, attemptId: attempt.attemptId, Self.abortedOutcome(current), emitter: emitter, pipe: pipe) {
            await self.announceCancelledSiblings(of: attempt)
        }
        logger.info("submission cancelled", metadata: ["submissionId": "\(record.submissionId)"])
    }

    /// Settles (first terminal state wins), then emits `submission_settled` — after every event
    /// of the submission is stored, so a waiter that sees the settlement can read them all.
    private func settle(
        _ record: SubmissionRecord, attemptId: String?, _ outcome: Outcome, emitter: EventEmitter, pipe: EventPipe,
        afterSettling: () async -> Void = {}
    ) async {
        await pipe.flush()
        var won = false
        for delay in [0, 200, 1000, 3000] {
            if delay > 0 { try? await Task.sleep(for: .milliseconds(delay)) }
            do {
                won = try await stores.submissions.settle(record.submissionId, attemptId: attemptId, outcome, at: Date())
                break
            } catch {
                logger.warning("could not settle a submission; retrying", metadata: ["submissionId": "\(record.submissionId)", "error": "\(error)"])
            }
        }
        if won {
            switch outcome {
            case .completed: emitter.emit(.submissionSettled(.init(outcome: .completed, error: nil)))
            case .failed(let error):
                let aborted = SubmissionStatus.settled(by: outcome) == .aborted
                emitter.emit(.submissionSettled(.init(outcome: aborted ? .aborted : .failed, error: error)))
            }
        }
        await afterSettling()
        await pipe.drain()
        wake.yield()
    }

    // MARK: recovery

    /// Takes over running submissions whose lease expired (their owner died or was stopped)
    /// and applies ``SubmissionRecovery`` to each. Returns how many were taken over.
    @discardableResult
    func recoverExpiredLeases() async -> Int {
        guard !isStopping else { return 0 }
        let expired: [SubmissionRecord]
        do {
            expired = try await stores.submissions.expiredLeases(agents: agentNames, now: Date(), limit: 100)
        } catch {
            logger.warning("expired-lease scan failed", metadata: ["error": "\(error)"])
            return 0
        }
        var recovered = 0
        for record in expired where active.withLock({ $0[record.submissionId] == nil }) {
            // Recovered attempts count against the concurrency bound like claimed ones; what does
            // not fit now waits for the next scan (or another process).
            guard runningCount < configuration.agentConcurrency, !isStopping else { break }
            if await recover(record) { recovered += 1 }
        }
        return recovered
    }

    private func recover(_ expired: SubmissionRecord) async -> Bool {
        guard let previous = expired.attemptId else { return false }
        let attemptId = FlueID.make("att")
        let now = Date()
        let record: SubmissionRecord
        let decision: RecoveryDecision
        do {
            guard
                let taken = try await stores.submissions.takeOver(
                    expired.submissionId, expectedAttemptId: previous, owner: ownerId, attemptId: attemptId, now: now,
                    leaseUntil: now.addingTimeInterval(configuration.submissionLease.timeInterval))
            else { return false }
            record = taken
            _ = try? await stores.submissions.markAttempt(
                record.submissionId, AttemptMarker(attempt: record.attemptCount, owner: ownerId, at: now))
            let history = try await stores.sessions.loadSession(record.key)
            var partial: [String] = []
            if record.journal?.phase == .modelRequestStarted, let key = record.journal?.streamKey {
                partial = try await stores.submissions.streamChunks(record.submissionId, streamKey: key)
            }
            decision = SubmissionRecovery.decide(record, history: history, partialOutput: partial, now: now)
        } catch {
            logger.warning("could not inspect an expired submission", metadata: ["submissionId": "\(expired.submissionId)", "error": "\(error)"])
            return false
        }
        Counter(
            label: "flue_agent_submission_recoveries_total", dimensions: [("decision", decision.name)],
            factory: metrics.factory
        ).increment()
        logger.notice(
            "recovering an interrupted submission",
            metadata: [
                "submissionId": "\(record.submissionId)", "previousOwner": "\(expired.owner ?? "unknown")",
                "decision": "\(decision)",
            ])
        switch decision {
        case .requeue:
            _ = try? await stores.submissions.requeue(record.submissionId, attemptId: attemptId)
            wake.yield()
        case .complete(let result):
            await settleFromRecovery(record, attemptId: attemptId, .completed(result))
        case .fail(let error):
            await settleFromRecovery(record, attemptId: attemptId, .failed(error.json))
        case .resume(let repair, let reason):
            start(record, repair: repair, recoveryReason: reason)
        case .abort(let repair):
            guard let registration = agents[record.key.agent] else { return false }
            do {
                let (emitter, pipe) = try await openStream(record)
                let harness = Harness(
                    agent: registration.agent, instanceId: record.key.instanceId, models: models,
                    store: stores.sessions, events: emitter)
                await settleAbortedAfterRecovery(record, attemptId: attemptId, repair: repair, harness: harness, emitter: emitter, pipe: pipe)
            } catch {
                logger.error("could not settle a cancelled submission", metadata: ["submissionId": "\(record.submissionId)", "error": "\(error)"])
            }
        }
        return true
    }

    private func settleAbortedAfterRecovery(
        _ record: SubmissionRecord, attemptId: String, repair: [Message], harness: Harness, emitter: EventEmitter,
        pipe: EventPipe
    ) async {
        do {
            if !repair.isEmpty { try await harness.session(record.key.session).appendRecovered(repair) }
        } catch {
            logger.warning("could not repair the history of a cancelled submission", metadata: ["submissionId": "\(record.submissionId)", "error": "\(error)"])
        }
        await settle(record, attemptId: attemptId, Self.abortedOutcome(record), emitter: emitter, pipe: pipe) {
            await self.announceCancelledSiblings(after: record, emitter: emitter, announced: Mutex([]))
        }
    }

    private func settleFromRecovery(_ record: SubmissionRecord, attemptId: String, _ outcome: Outcome) async {
        do {
            let (emitter, pipe) = try await openStream(record)
            await settle(record, attemptId: attemptId, outcome, emitter: emitter, pipe: pipe) {
                await self.announceCancelledSiblings(after: record, emitter: emitter, announced: Mutex([]))
            }
        } catch {
            logger.error("could not settle a recovered submission", metadata: ["submissionId": "\(record.submissionId)", "error": "\(error)"])
        }
    }

    // MARK: shutdown

    /// Stops claiming, asks running attempts to stop at their next turn boundary, and waits up
    /// to `grace` (renewing their leases meanwhile); attempts still running then are cancelled.
    /// Stopped submissions stay unsettled with released leases, so the next start resumes them.
    func drain(grace: Duration) async {
        stopping.withLock { $0 = true }
        let attempts = active.withLock { Array($0.values) }
        guard !attempts.isEmpty else { return }
        logger.info("stopping agent submissions at their next turn boundary", metadata: ["count": "\(attempts.count)"])
        for attempt in attempts { attempt.control.requestStop() }
        let tasks = attempts.compactMap { $0.task.withLock { $0 } }
        _ = await FlueEngine.drain(tasks, grace: grace, meanwhile: { await self.leaseRenewalLoop() }) {
            logger.warning("grace period over; cancelling agent submissions", metadata: ["count": "\(tasks.count)"])
        }
    }
}

