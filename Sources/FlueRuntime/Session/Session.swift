import Foundation
import Synchronization

/// One conversation with an agent. Operations (`prompt`, `task`) run one at a time; a second
/// concurrent call fails at once with `session_busy` — open another named session for parallel
/// work. History is saved to the harness's store after every message.
public actor Session {
    /// The session name (`default`, or `task:<parent>:<id>` for subagent tasks).
    public nonisolated let name: String
    public nonisolated let key: SessionKey
    let agent: Agent
    let harness: Harness
    private var snapshot: SessionSnapshot
    private let persisted: Bool
    private let parentSession: String?
    private let taskId: String?
    private let depth: Int
    private var busy = false


    init(
        name: String, key: SessionKey, agent: Agent, harness: Harness, snapshot: SessionSnapshot, persisted: Bool,
        parentSession: String?, taskId: String?, depth: Int
    ) {
        self.name = name
        self.key = key
        self.agent = agent
        self.harness = harness
        self.snapshot = snapshot
        self.persisted = persisted
        self.parentSession = parentSession
        self.taskId = taskId
        self.depth = depth
    }

    /// The conversation so far.
    public var messages: [Message] { snapshot.messages }

    /// The whole session state, for persistence or inspection.
    public var currentSnapshot: SessionSnapshot { snapshot }

    /// Sends a prompt and runs the agent loop until the model answers without calling tools.
    public func prompt(_ text: String, options: PromptOptions = PromptOptions()) async throws -> PromptResponse {
        try await operation(kind: .prompt) { scope in
            try await self.respond(to: .user(text: text, images: options.images), options: options, scope: scope)
        }
    }

    /// Continues the saved conversation without new input: runs the agent loop from the history
    /// as it stands (its last message is a user input or tool results), as a `prompt` operation.
    /// Hosts use it to resume an interrupted durable submission. When the history already ends
    /// with a final answer, that answer is returned without calling the model.
    public func resume(options: PromptOptions = PromptOptions()) async throws -> PromptResponse {
        try await operation(kind: .prompt) { scope in
            if case .assistant(let last)? = self.snapshot.messages.last, last.toolCalls.isEmpty {
                let response = PromptResponse(text: last.text, usage: last.usage, model: last.model)
                return (response, try JSONValue(encoding: response), last.usage)
            }
            return try await self.respond(to: nil, options: options, scope: scope)
        }
    }

    /// Runs the loop (after appending `input`, if any) and answers with the final text.
    private func respond(to input: Message?, options: PromptOptions, scope: EventCorrelation) async throws
        -> (PromptResponse, JSONValue, Usage)
    {
        let (model, outcome) = try await runLoop(input: input, options: options, extraTools: [], scope: scope)
        let response = PromptResponse(text: outcome.lastAssistant?.text ?? "", usage: outcome.usage, model: model)
        return (response, try JSONValue(encoding: response), outcome.usage)
    }

    /// Appends messages to the saved history outside any operation: hosts repair an interrupted
    /// turn with them (partial output, results for tool calls whose outcome is unknown).
    public func appendRecovered(_ messages: [Message]) async throws {
        try ensureIdle()
        try await append(messages)
    }

    /// Sends a prompt and returns a value of `T` that the model produced through the `finish`
    /// tool, whose parameters are the JSON Schema derived from `T`.
    ///
    /// An invalid value is sent back to the model with the decoding error; a model that stops
    /// without calling `finish` is reminded. After `options.resultRetries` such rounds, or when
    /// the model calls `give_up`, the call fails with `result_unavailable`.
    public func prompt<T: Decodable & Sendable>(
        _ text: String, result: T.Type, options: PromptOptions = PromptOptions()
    ) async throws -> T {
        try await promptForResult(text, result: T.self, options: options).data
    }

    /// Like ``prompt(_:result:options:)`` but also returns usage and model.
    public func promptForResult<T: Decodable & Sendable>(
        _ text: String, result: T.Type, options: PromptOptions = PromptOptions()
    ) async throws -> StructuredResponse<T> {
        try await structured({ _ in text }, result: T.self, options: options, kind: .prompt)
    }

    /// Runs a skill (the agent's, or its sandbox's `SKILL.md`) as one operation (`operationKind`
    /// `skill`): the model gets the skill's instructions and `arguments` and answers with a `T`.
    /// Throws `skill_not_found`, and what ``prompt(_:result:options:)`` throws.
    public func skill<T: Decodable & Sendable>(
        _ name: String, arguments: JSONValue? = nil, result: T.Type, options: PromptOptions = PromptOptions()
    ) async throws -> T {
        let agentName = agent.name
        return try await structured(
            { catalog in
                guard let skill = catalog.skill(named: name) else {
                    let known = catalog.skills.map(\.name).joined(separator: ", ")
                    throw FlueError(
                        .skillNotFound,
                        "agent \(agentName) has no skill named \(name)" + (known.isEmpty ? "" : "; skills: \(known)"),
                        details: ["skill": .string(name)])
                }
                var text = "Follow the skill \(skill.name):\n\n\(skill.instructions)"
                if let arguments { text += "\n\nArguments:\n\(arguments.prettySortedJSON)" }
                return text
            }, result: T.self, options: options, kind: .skill
        ).data
    }

    /// A structured operation: `text` (given the skill catalog, loaded once for the operation)
    /// is the prompt; the loop runs until `finish`, `give_up` or the retries are used up.
    private func structured<T: Decodable & Sendable>(
        _ text: (SkillCatalog) throws -> String, result: T.Type, options: PromptOptions, kind: FlueEvent.OperationKind
    ) async throws -> StructuredResponse<T> {
        let contract = try ResultContract<T>(retries: options.resultRetries)
        return try await operation(kind: kind) { scope in
            let catalog = try await self.skillCatalog(scope: scope)
            var input = Message.user(text: try text(catalog) + "\n\n" + contract.footer, images: options.images)
            var usage = Usage()
            while true {
                let (model, outcome) = try await self.runLoop(
                    input: input, options: options, extraTools: contract.tools, catalog: catalog, scope: scope)
                usage += outcome.usage
                switch contract.state {
                case .finished(let value, let raw):
                    return (StructuredResponse(data: value, usage: usage, model: model), raw, usage)
                case .gaveUp(let reason):
                    throw FlueError(
                        .resultUnavailable, "the model gave up: \(reason)",
                        details: ["reason": .string(reason), "assistantText": .string(outcome.lastAssistant?.text ?? "")])
                case .exhausted(let lastError):
                    throw FlueError(
                        .resultUnavailable,
                        "no valid result after \(options.resultRetries) retries: \(lastError)",
                        details: ["reason": .string(lastError), "assistantText": .string(outcome.lastAssistant?.text ?? "")])
                case .pending:
                    guard contract.recordFailure("the model stopped without calling finish") else { continue }
                    input = .user(text: contract.reminder, images: [])
                }
            }
        }
    }

    /// Runs `prompt` in a fresh child session (empty history) as the named subagent, or as this
    /// agent when `agent` is nil, and returns its final answer.
    public func task(_ prompt: String, agent subagentName: String? = nil, options: PromptOptions = PromptOptions())
        async throws -> PromptResponse
    {
        try await operation(kind: .task) { scope in
            let response = try await self.runTask(prompt, agent: subagentName, options: options, scope: scope)
            return (response, try JSONValue(encoding: response), response.usage)
        }
    }

    /// Throws `session_busy` while an operation runs.
    func ensureIdle() throws {
        if busy { throw FlueError(.sessionBusy, "session \(name) is running an operation") }
    }

    /// Subagent tasks nested at most this deep before ``Agent/maxTaskDepth`` existed.
    @available(*, deprecated, message: "set Agent.maxTaskDepth (default 4)")
    public static let maxTaskDepth = 4

    // MARK: - Operation plumbing

    private var baseCorrelation: EventCorrelation {
        EventCorrelation(harness: harness.name, session: name, parentSession: parentSession, taskId: taskId)
    }

    /// Wraps an operation: busy guard, `operation_start` / `operation` / `idle` events.
    private func operation<R: Sendable>(
        kind: FlueEvent.OperationKind, _ body: (EventCorrelation) async throws -> (R, JSONValue, Usage)
    ) async throws -> R {
        try ensureIdle()
        busy = true
        defer { busy = false }
        var scope = baseCorrelation
        scope.operationId = FlueID.make("op")
        let events = harness.events
        events.emit(.operationStart(.init(operationKind: kind)), scope)
        let started = ContinuousClock.now
        do {
            let (value, json, usage) = try await body(scope)
            events.emit(
                .operation(
                    .init(
                        operationKind: kind, durationMs: started.millisecondsElapsed, isError: false, error: nil,
                        result: json, usage: usage)), scope)
            events.emit(.idle, scope)
            return value
        } catch let pause as ApprovalRequired {
            // Not an end: the operation continues when the calls are decided (a host resumes it).
            events.emit(.idle, scope)
            throw pause
        } catch {
            let failure = Self.operationError(error, kind: kind)
            events.emit(
                .operation(
                    .init(
                        operationKind: kind, durationMs: started.millisecondsElapsed, isError: true,
                        error: FlueError.describe(failure), result: nil, usage: Usage())), scope)
            events.emit(.idle, scope)
            throw failure
        }
    }

    /// Model and provider errors surface as `operation_failed`; typed runtime errors,
    /// infrastructure errors and cancellation pass through unchanged.
    private static func operationError(_ error: any Error, kind: FlueEvent.OperationKind) -> any Error {
        guard let flue = error as? FlueError else {
            if error is CancellationError || error is any InfrastructureError || error is ApprovalRequired { return error }
            return FlueError(
                .operationFailed, "\(kind) failed: \(error)", details: ["operation": .string(kind.rawValue)])
        }
        switch flue.kind {
        case .modelRequestFailed, .modelStreamInterrupted, .contextWindowExceeded:
            var details = flue.details
            details["operation"] = .string(kind.rawValue)
            details["reason"] = flue.json
            return FlueError(.operationFailed, "\(kind) failed: \(flue.message)", details: details)
        default:
            return flue
        }
    }

    private func append(_ message: Message, inputId: String? = nil) async throws {
        try await append([message], inputId: inputId)
    }

    /// Appends messages and saves the snapshot once; `inputId` marks the first one as that input
    /// (in the same save, so the mark and the message are stored together).
    private func append(_ messages: [Message], inputId: String? = nil) async throws {
        if let inputId { snapshot.recordInput(inputId, at: snapshot.messages.count) }
        snapshot.messages += messages
        snapshot.updatedAt = Date()
        if persisted { try await harness.store.saveSession(key, snapshot) }
    }

    /// Appends `input` (when given), then runs the loop with the agent's tools, call tools and
    /// `extraTools`. Without input the loop continues the saved history as it is.
    private func runLoop(
        input: Message?, options: PromptOptions, extraTools: [LoopTool], catalog preloaded: SkillCatalog? = nil,
        scope: EventCorrelation
    ) async throws -> (ModelSpecifier, AgentLoop.Outcome) {
        let (model, client) = try harness.resolveModel(options.model, agent: agent)
        var tools = agent.tools.map(LoopTool.init) + options.tools.map(LoopTool.init)
        var systemPrompt = agent.systemPrompt
        // This session's profile: a subagent without a sandbox gets no built-ins, one with a sandbox its own.
        let sandbox = try await harness.sandbox(for: agent)
        if let sandbox {
            tools += try BuiltinTool.tools(agent.builtinTools, sandbox: sandbox).map(LoopTool.init)
            systemPrompt += try await Self.projectInstructions(sandbox)
        }
        let catalog: SkillCatalog
        if let preloaded { catalog = preloaded } else { catalog = try await skillCatalog(scope: scope) }
        systemPrompt += catalog.promptSection
        if let skillTool = catalog.tool { tools.append(skillTool) }
        if !agent.subagents.isEmpty { tools.append(taskTool(options: options, scope: scope)) }
        tools += extraTools
        var names = Set<String>()
        for tool in tools where !names.insert(tool.spec.name).inserted {
            throw FlueError(.toolNameConflict, "two tools are named \(tool.spec.name) in this call")
        }
        if let input {
            try await append(input, inputId: options.inputId)
            try await options.journal?.inputApplied()
        }
        let compact: @Sendable (CompactionTrigger, Int) async throws -> (context: [Message], usage: Usage)? = {
            [weak self] trigger, estimate in
            guard let self else { return nil }
            return try await self.compactDuringLoop(trigger, estimate: estimate, model: model, scope: scope)
        }
        let loop = AgentLoop(
            client: client, model: model, systemPrompt: systemPrompt, tools: tools,
            maxParallelToolCalls: agent.maxParallelToolCalls, thinking: options.thinking ?? agent.thinking,
            maxTurns: agent.maxTurns,
            budget: agent.budget.tightened(by: options.budget),
            budgetSpent: options.budgetSpent,
            maxOutputTokens: agent.maxOutputTokens, events: harness.events, correlation: scope,
            journal: options.journal,
            approvals: options.approvals,
            record: { [weak self] message in try await self?.append(message) },
            compactionThreshold: agent.compaction.threshold(for: model),
            compact: agent.compaction.enabled ? compact : nil)
        harness.events.emit(.agentStart, scope)
        defer { harness.events.emit(.agentEnd, scope) }
        return (model, try await loop.run(messages: snapshot.contextMessages))
    }

    // MARK: - Compaction

    /// Summarises the older part of the history now, whatever its size, as one operation
    /// (`operationKind` `compact`): the newest messages (about the agent's
    /// ``CompactionPolicy/keepRecentTokens``) stay verbatim. Answers `false` when there was
    /// nothing to summarise. Throws `session_busy`, `model_not_configured`, and
    /// `operation_failed` when the summary call fails.
    @discardableResult
    public func compact(options: PromptOptions = PromptOptions()) async throws -> Bool {
        try await operation(kind: .compact) { scope in
            let (model, _) = try self.harness.resolveModel(options.model, agent: self.agent)
            let usage = try await self.compactHistory(
                .manual, estimate: Compactor.tokens(of: self.snapshot.contextMessages), model: model, scope: scope)
            return (usage != nil, .bool(usage != nil), usage ?? Usage())
        }
    }

    /// The agent loop's compaction: a threshold compaction that fails is logged and skipped
    /// (the request may still fit); an overflow compaction that fails fails the operation.
    private func compactDuringLoop(
        _ trigger: CompactionTrigger, estimate: Int, model: ModelSpecifier, scope: EventCorrelation
    ) async throws -> (context: [Message], usage: Usage)? {
        do {
            guard let usage = try await compactHistory(trigger, estimate: estimate, model: model, scope: scope) else {
                return nil
            }
            return (snapshot.contextMessages, usage)
        } catch where trigger == .threshold && !(error is CancellationError) {
            harness.events.emit(
                .log(.init(level: .warn, message: "compaction failed, continuing without it: \(error)")), scope)
            return nil
        }
    }

    /// Summarises the messages between the last compaction's kept part and the recent part,
    /// saves the summary in the snapshot and emits `compaction_start`, a `turn` (purpose
    /// `compaction`) and `compaction`. Answers the summary call's usage, or `nil` when nothing
    /// could be cut.
    private func compactHistory(
        _ trigger: CompactionTrigger, estimate: Int, model sessionModel: ModelSpecifier, scope: EventCorrelation
    ) async throws -> Usage? {
        let policy = agent.compaction
        let start = snapshot.compaction?.firstKeptIndex ?? 0
        guard
            let cut = Compactor.cutIndex(snapshot.messages, from: start, keepRecentTokens: policy.keepRecentTokens)
        else { return nil }
        let events = harness.events
        let before = snapshot.contextMessages.count
        let (model, client) = try harness.resolveModel(policy.model ?? sessionModel, agent: agent)
        events.emit(.compactionStart(.init(reason: trigger.rawValue, estimatedTokens: estimate)), scope)
        let summarised = snapshot.messages[start..<cut]
        let request = ModelRequest(
            model: model, systemPrompt: Compactor.systemPrompt,
            messages: [
                .user(
                    text: Compactor.prompt(
                        transcript: Compactor.transcript(
                            summarised, maxCharacters: policy.transcriptCharacters(for: model)),
                        previousSummary: snapshot.compaction?.summary),
                    images: [])
            ],
            tools: [], thinking: .off, maxOutputTokens: min(policy.summaryTokens(for: model), agent.maxOutputTokens))
        var turnScope = scope
        turnScope.turnId = FlueID.make("turn")
        events.emit(.turnStart(.init(purpose: .compaction, model: model.description)), turnScope)
        let started = ContinuousClock.now
        let answer: AssistantMessage
        do {
            answer = try await GenAITracing.withChatSpan(model, maxOutputTokens: request.maxOutputTokens) { span in
                let answer = try await client.complete(request) { _ in }
                GenAITracing.recordResponse(span, answer)
                return answer
            }
            guard !answer.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw FlueError(.operationFailed, "the compaction summary came back empty")
            }
        } catch {
            events.emit(
                .turn(
                    .init(
                        durationMs: started.millisecondsElapsed, model: model.description, usage: Usage(),
                        stopReason: error is CancellationError ? .aborted : .error, isError: true,
                        error: FlueError.describe(error))), turnScope)
            throw error
        }
        events.emit(
            .turn(
                .init(
                    durationMs: started.millisecondsElapsed, model: model.description, usage: answer.usage,
                    stopReason: answer.stopReason, isError: false, error: nil)), turnScope)
        var files = Compactor.files(summarised)
        if let earlier = snapshot.compaction {
            files.read = Array(Set(files.read + earlier.readFiles)).sorted()
            files.modified = Array(Set(files.modified + earlier.modifiedFiles)).sorted()
        }
        // Saved first, then adopted: a failed save leaves the session as it was.
        var compacted = snapshot
        compacted.compaction = CompactionRecord(
            summary: answer.text.trimmingCharacters(in: .whitespacesAndNewlines), firstKeptIndex: cut,
            tokensBefore: estimate, readFiles: files.read, modifiedFiles: files.modified, usage: answer.usage)
        compacted.updatedAt = Date()
        if persisted { try await harness.store.saveSession(key, compacted) }
        snapshot = compacted
        events.emit(
            .compaction(
                .init(messagesBefore: before, messagesAfter: snapshot.contextMessages.count, usage: answer.usage)),
            scope)
        return answer.usage
    }

    /// The agent's skills and its sandbox's `SKILL.md` files (a bad file is skipped with a `warn`
    /// log event in `scope`).
    private func skillCatalog(scope: EventCorrelation) async throws -> SkillCatalog {
        try await SkillCatalog.load(
            agent: agent, sandbox: try await harness.sandbox(for: agent), events: harness.events, scope: scope)
    }

    /// The most of `AGENTS.md` every prompt carries.
    static let maxProjectInstructionBytes = 32 * 1024

    /// `AGENTS.md` in the sandbox's working directory, as a section of the system prompt ("" when
    /// there is none). Read at every operation, so an edit applies to the next prompt.
    static func projectInstructions(_ sandbox: any Sandbox) async throws -> String {
        let path = sandbox.workingDirectory + "/AGENTS.md"
        guard let info = try await sandbox.stat(path), !info.isDirectory else { return "" }
        var text = try await sandbox.readText(path).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return "" }
        // Every prompt carries it: keep it bounded (32 KB), whoever wrote it.
        if text.utf8.count > maxProjectInstructionBytes {
            text = String(decoding: Data(text.utf8.prefix(maxProjectInstructionBytes)), as: UTF8.self)
                + "\n[AGENTS.md cut at 32 KB; read the file for the rest]"
        }
        return "\n\n# Project instructions (AGENTS.md)\n\n" + text
    }

    // MARK: - Subagent tasks

    private func taskTool(options: PromptOptions, scope: EventCorrelation) -> LoopTool {
        let names = agent.subagents.map(\.name)
        let listing = agent.subagents.map { "- \($0.name): \($0.description ?? "no description")" }
            .joined(separator: "\n")
        let spec = ToolSpec(
            name: "task",
            description: "Delegate a self-contained piece of work to a subagent, which starts with an empty "
                + "conversation and returns its final answer. Available subagents:\n" + listing,
            parameters: JSONSchema([
                "type": "object",
                "properties": [
                    "prompt": ["type": "string", "description": "Everything the subagent needs to know."],
                    "agent": ["type": "string", "enum": .array(names.map(JSONValue.string))],
                ],
                "required": ["prompt", "agent"],
                "additionalProperties": false,
            ]))
        return LoopTool(spec: spec) { [self] arguments, _ in
            guard let prompt = arguments["prompt"]?.stringValue else {
                return ToolOutcome(content: "task needs a string prompt", isError: true)
            }
            do {
                let response = try await self.runTask(
                    prompt, agent: arguments["agent"]?.stringValue, options: options, scope: scope)
                return ToolOutcome(content: response.text, isError: false)
            } catch {
                return ToolOutcome(content: "task failed: \(error)", isError: true)
            }
        }
    }

    private nonisolated func runTask(
        _ prompt: String, agent subagentName: String?, options: PromptOptions, scope: EventCorrelation
    ) async throws -> PromptResponse {
        // The limit is the harness's agent's: subagent profiles do not raise it.
        let limit = harness.agent.maxTaskDepth
        guard depth < limit else {
            throw FlueError(
                .taskDepthExceeded, "subagent tasks may nest at most \(limit) deep",
                details: ["maxTaskDepth": .int(limit)])
        }
        var profile = agent
        if let subagentName {
            guard let declared = agent.subagents.first(where: { $0.name == subagentName }) else {
                throw FlueError(
                    .subagentNotDeclared, "agent \(agent.name) declares no subagent named \(subagentName)",
                    details: ["agent": .string(subagentName)])
            }
            profile = declared
            if profile.model == nil { profile.model = options.model ?? agent.model }
        }
        let taskId = FlueID.make("task")
        let childName = "task:\(name):\(taskId)"
        let events = harness.events
        events.emit(.taskStart(.init(prompt: prompt, agent: subagentName)), scope)
        let started = ContinuousClock.now
        let child = Session(
            name: childName,
            key: SessionKey(agent: key.agent, instanceId: key.instanceId, harness: key.harness, session: childName),
            agent: profile, harness: harness, snapshot: SessionSnapshot(), persisted: false, parentSession: name,
            taskId: taskId, depth: depth + 1)
        do {
            var childOptions = options
            childOptions.images = []
            // The child's turns are not the submission's: the parent journals the task as one
            // tool call (its outcome, once finished, is never run again), and the input id marks
            // the parent's history only.
            childOptions.journal = nil
            childOptions.inputId = nil
            if subagentName != nil { childOptions.tools = [] }
            let response = try await child.prompt(prompt, options: childOptions)
            events.emit(
                .task(
                    .init(
                        result: .string(response.text), isError: false, error: nil,
                        durationMs: started.millisecondsElapsed)), scope)
            return response
        } catch {
            events.emit(
                .task(
                    .init(
                        result: nil, isError: true, error: FlueError.describe(error),
                        durationMs: started.millisecondsElapsed)), scope)
            throw error
        }
    }
}

/// The `finish` / `give_up` pair injected for a structured prompt, and what the model did with it.
final class ResultContract<T: Decodable & Sendable>: Sendable {
    enum State: Sendable {
        case pending
        case finished(T, JSONValue)
        case gaveUp(String)
        case exhausted(String)
    }

    private let mutableState = Mutex<(state: State, failures: Int)>((.pending, 0))
    let retries: Int
    let wrapped: Bool
    let schema: JSONSchema

    init(retries: Int) throws {
        let derived = try JSONSchema.derive(from: T.self)
        self.retries = max(0, retries)
        self.wrapped = !derived.isObject
        self.schema = derived.wrappedAsObject
    }

    var state: State { mutableState.withLock { $0.state } }

    let footer =
        "When you are done, answer ONLY by calling the `finish` tool with the result as its arguments. "
        + "If the task is impossible, call `give_up` with the reason."

    let reminder =
        "You have not delivered the result. Call the `finish` tool now with the result as its arguments, "
        + "or `give_up` if it cannot be done."

    /// Counts a failed attempt; returns false (and marks the contract exhausted) past the budget.
    func recordFailure(_ reason: String) -> Bool {
        mutableState.withLock { state in
            state.failures += 1
            if state.failures > retries {
                state.state = .exhausted(reason)
                return false
            }
            return true
        }
    }

    var tools: [LoopTool] {
        let finish = LoopTool(
            spec: ToolSpec(
                name: "finish", description: "Deliver the final result. Arguments must match the schema exactly.",
                parameters: schema)
        ) { [self] arguments, _ in
            if case .finished = state {
                return ToolOutcome(content: "The result was already delivered.", isError: true)
            }
            let payload = wrapped ? (arguments["result"] ?? .null) : arguments
            do {
                let value = try payload.decode(T.self)
                mutableState.withLock { $0.state = .finished(value, payload) }
                return ToolOutcome(content: "Result accepted.", isError: false, terminate: true)
            } catch {
                let problem: String
                if let decoding = error as? DecodingError {
                    problem = FlueError.toolInputValidation(tool: "finish", decoding).message
                } else {
                    problem = "\(error)"
                }
                let more = recordFailure(problem)
                return ToolOutcome(
                    content: "Invalid result: \(problem). Call finish again with arguments matching the schema.",
                    isError: true, terminate: !more)
            }
        }
        let giveUp = LoopTool(
            spec: ToolSpec(
                name: "give_up", description: "Report that the result cannot be produced, and why.",
                parameters: JSONSchema([
                    "type": "object", "properties": ["reason": ["type": "string"]], "required": ["reason"],
                    "additionalProperties": false,
                ]))
        ) { [self] arguments, _ in
            let reason = arguments["reason"]?.stringValue ?? "no reason given"
            mutableState.withLock { $0.state = .gaveUp(reason) }
            return ToolOutcome(content: "Understood.", isError: false, terminate: true)
        }
        return [finish, giveUp]
    }
}
