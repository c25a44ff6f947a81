import Foundation
import Tracing

/// What running one tool call produced.
struct ToolOutcome: Sendable {
    var content: String
    var isError: Bool
    /// Ends the loop after the current batch (a successful `finish`).
    var terminate: Bool = false
}

/// A tool as the loop runs it: user tools and framework tools (finish, give_up, task) alike.
struct LoopTool: Sendable {
    var spec: ToolSpec
    var execute: @Sendable (JSONValue, ToolContext) async -> ToolOutcome
    /// Whether a call with these arguments needs a human decision (``ApprovalGatedTool``).
    var approval: (@Sendable (JSONValue) -> Bool)?

    init(spec: ToolSpec, execute: @escaping @Sendable (JSONValue, ToolContext) async -> ToolOutcome) {
        self.spec = spec
        self.execute = execute
    }

    /// Adapts a user tool: any thrown error becomes an error result the model sees.
    init(_ tool: any Tool) {
        self.approval = (tool as? ApprovalGatedTool)?.isRequired
        self.spec = ToolSpec(name: tool.name, description: tool.description, parameters: tool.parameters)
        self.execute = { arguments, context in
            do {
                return ToolOutcome(content: try await tool.call(arguments, context: context), isError: false)
            } catch let error as FlueError {
                return ToolOutcome(content: error.message, isError: true)
            } catch is CancellationError {
                return ToolOutcome(content: "the tool call was cancelled", isError: true)
            } catch {
                return ToolOutcome(content: "tool \(tool.name) failed: \(error)", isError: true)
            }
        }
    }
}

/// The model-turn → tool-calls → tool-results cycle of one operation.
struct AgentLoop: Sendable {
    var client: any ModelClient
    var model: ModelSpecifier
    var systemPrompt: String
    var tools: [LoopTool]
    /// Tool calls of one turn running at once, at most.
    var maxParallelToolCalls: Int = 8
    var thinking: ThinkingLevel
    var maxTurns: Int
    /// Turn and token limits (``Budget``), checked after each turn.
    var budget: Budget = .unlimited
    /// Turns and tokens spent before this run of the loop (a resumed operation).
    var budgetSpent = Budget.Spent()
    var maxOutputTokens: Int
    var events: EventEmitter
    /// Session, operation and task ids stamped on every event.
    var correlation: EventCorrelation
    /// Receives durable progress (model requests, streamed text, tool calls, saved messages).
    var journal: (any OperationJournal)?
    /// Decisions on calls that need approval; `nil`: nobody can be asked, such calls are denied.
    var approvals: (any ToolApprovalGate)? = nil
    /// Appends a message to the session (and persists it) as soon as it exists.
    var record: @Sendable (Message) async throws -> Void
    /// Estimated context tokens above which the history is compacted before a model request
    /// (`nil`: never).
    var compactionThreshold: Int? = nil
    /// Compacts the session's history (the trigger and the estimated tokens given) and answers
    /// with the context to continue from and what the summary cost; `nil` when nothing was
    /// compacted. `nil` itself: the agent does not compact automatically.
    var compact: (@Sendable (CompactionTrigger, Int) async throws -> (context: [Message], usage: Usage)?)? = nil

    struct Outcome {
        var usage = Usage()
        var lastAssistant: AssistantMessage?
        var terminated = false
    }

    /// Runs turns until the model stops calling tools, a tool terminates the loop, or the turn
    /// limit is reached. `messages` is the conversation so far, ending with the new user input.
    func run(messages initial: [Message]) async throws -> Outcome {
        var messages = initial
        var outcome = Outcome()
        let specs = tools.map(\.spec)
        let byName = Dictionary(tools.map { ($0.spec.name, $0) }, uniquingKeysWith: { first, _ in first })
        // What the last request of this loop reported reading and writing, and the history
        // length then: a better estimate than characters (reset by compaction).
        var measured: (tokens: Int, messageCount: Int)?
        var overflowCompacted = false
        // A batch of tool calls without results (held for approval) runs first.
        if case .assistant(let pending)? = initial.last, !pending.toolCalls.isEmpty {
            let results = try await runTools(
                pending.toolCalls, turn: 0, byName: byName, cutOff: pending.cutOffToolCallId)
            for result in results {
                messages.append(.toolResult(result.message))
                try await record(.toolResult(result.message))
            }
            try await journal?.toolResultsRecorded(turn: 0)
            if results.contains(where: \.outcome.terminate) {
                outcome.lastAssistant = pending
                outcome.terminated = true
                return outcome
            }
        }
        for turnIndex in 0..<maxTurns {
            try Task.checkCancellation()
            // First the journal (where a host stops an attempt at a turn boundary), then any
            // compaction (a crash during it repeats this turn's request, which has no side effects).
            try await journal?.modelRequestStarting(turn: turnIndex)
            if let threshold = compactionThreshold, let compact {
                let estimate = estimatedTokens(messages, specs: specs, measured: measured)
                if estimate > threshold, let compacted = try await compact(.threshold, estimate) {
                    messages = compacted.context
                    outcome.usage += compacted.usage
                    measured = nil
                }
            }
            let assistant: AssistantMessage
            do {
                assistant = try await turn(turnIndex, messages: messages, specs: specs)
            } catch let error as FlueError where error.kind == .contextWindowExceeded && !overflowCompacted {
                // One compaction per operation, then the same request again.
                overflowCompacted = true
                let estimate = estimatedTokens(messages, specs: specs, measured: measured)
                guard let compact, let compacted = try await compact(.overflow, estimate) else { throw error }
                messages = compacted.context
                outcome.usage += compacted.usage
                measured = nil
                try await journal?.modelRequestStarting(turn: turnIndex)
                assistant = try await turn(turnIndex, messages: messages, specs: specs)
            }
            outcome.usage += assistant.usage
            measured = (assistant.usage.totalTokens, messages.count + 1)
            outcome.lastAssistant = assistant
            messages.append(.assistant(assistant))
            try await record(.assistant(assistant))
            try await journal?.assistantRecorded(turn: turnIndex, assistant)
            let calls = assistant.toolCalls
            if calls.isEmpty { return outcome }
            let results = try await runTools(
                calls, turn: turnIndex, byName: byName, cutOff: assistant.cutOffToolCallId)
            for result in results {
                messages.append(.toolResult(result.message))
                try await record(.toolResult(result.message))
            }
            try await journal?.toolResultsRecorded(turn: turnIndex)
            if results.contains(where: \.outcome.terminate) {
                outcome.terminated = true
                return outcome
            }
            let spent = Budget.Spent(
                turns: Usage.saturatingSum(budgetSpent.turns, turnIndex + 1),
                tokens: Usage.saturatingSum(budgetSpent.tokens, outcome.usage.totalTokens),
                cost: budgetSpent.cost + (outcome.usage.cost?.total ?? 0))
            if let reached = budget.reached(spent) {
                throw FlueError(
                    .budgetExceeded,
                    "the operation reached its budget (\(reached.limit) \(reached.allowed.jsonString)) with the model still calling tools",
                    details: [
                        "limit": .string(reached.limit), "allowed": reached.allowed, "used": reached.used,
                        "turns": .int(spent.turns), "tokens": .int(spent.tokens), "cost": .double(spent.cost),
                    ])
            }
        }
        throw FlueError(
            .maxTurnsExceeded, "the agent did not finish within \(maxTurns) model turns",
            details: ["maxTurns": .int(maxTurns)])
    }

    /// The context a request would carry, in tokens: the larger of a character count (system
    /// prompt, tool schemas, messages) and the last measured request plus what came after it.
    private func estimatedTokens(
        _ messages: [Message], specs: [ToolSpec], measured: (tokens: Int, messageCount: Int)?
    ) -> Int {
        let schemas = specs.reduce(0) {
            Usage.saturatingSum($0, Compactor.tokens($1.name + $1.description) + Compactor.tokens($1.parameters.value.jsonString))
        }
        let counted = Usage.saturatingSum(
            Usage.saturatingSum(Compactor.tokens(systemPrompt), schemas), Compactor.tokens(of: messages))
        guard let measured, measured.messageCount <= messages.count else { return counted }
        return max(counted, Usage.saturatingSum(measured.tokens, Compactor.tokens(of: messages[measured.messageCount...])))
    }

    private func turn(_ index: Int, messages: [Message], specs: [ToolSpec]) async throws -> AssistantMessage {
        var turnScope = correlation
        turnScope.turnId = FlueID.make("turn")
        let scope = turnScope
        events.emit(.turnStart(.init(purpose: .agent, model: model.description)), scope)
        let started = ContinuousClock.now
        let request = ModelRequest(
            model: model, systemPrompt: systemPrompt, messages: messages, tools: specs, thinking: thinking,
            maxOutputTokens: maxOutputTokens)
        let events = self.events
        let journal = self.journal
        let client = self.client
        let model = self.model
        let maxOutputTokens = self.maxOutputTokens
        return try await GenAITracing.withChatSpan(model, maxOutputTokens: maxOutputTokens) { span in
        do {
            let assistant = try await client.complete(request) { delta in
                switch delta {
                case .textDelta(let text):
                    events.emit(.textDelta(.init(delta: text)), scope)
                    await journal?.streamed(turn: index, text: text)
                case .thinkingStart: events.emit(.thinkingStart, scope)
                case .thinkingDelta(let text): events.emit(.thinkingDelta(.init(delta: text)), scope)
                case .thinkingEnd: events.emit(.thinkingEnd, scope)
                case .toolCallStart: break
                }
            }
            events.emit(
                .turn(
                    .init(
                        durationMs: started.millisecondsElapsed, model: model.description, usage: assistant.usage,
                        stopReason: assistant.stopReason, isError: false, error: nil)), scope)
            GenAITracing.recordResponse(span, assistant)
            return assistant
        } catch {
            let stop: StopReason = error is CancellationError ? .aborted : .error
            events.emit(
                .turn(
                    .init(
                        durationMs: started.millisecondsElapsed, model: model.description, usage: Usage(),
                        stopReason: stop, isError: true, error: FlueError.describe(error))), scope)
            throw error
        }
        }
    }

    /// Runs a batch of tool calls concurrently; results come back in call order. The call
    /// `cutOff` (its arguments truncated by the output token limit) is not run: its result tells
    /// the model so.
    private func runTools(_ calls: [ToolCall], turn: Int, byName: [String: LoopTool], cutOff: String?) async throws
        -> [(outcome: ToolOutcome, message: ToolResultMessage)]
    {
        let events = self.events
        let scope = correlation
        let journal = self.journal
        let limit = max(1, maxParallelToolCalls)
        // Calls that need approval: decided ones run (or are denied); undecided ones stop the
        // batch before anything of it runs.
        var decided: [String: ToolApprovalDecision] = [:]
        var pending: [ToolCall] = []
        for call in calls where call.id != cutOff {
            guard let isRequired = byName[call.name]?.approval, isRequired(call.arguments) else { continue }
            guard let approvals else {
                decided[call.id] = .denied(reason: Self.noApproverReason)
                continue
            }
            if let decision = await approvals.decision(for: call) { decided[call.id] = decision } else { pending.append(call) }
        }
        if !pending.isEmpty { throw ApprovalRequired(calls: pending) }
        let decisions = decided
        let results = await withTaskGroup(of: (Int, ToolOutcome).self) { group in
            var ordered = [ToolOutcome?](repeating: nil, count: calls.count)
            for (index, call) in calls.enumerated() {
                // At most `limit` calls in flight: wait for one to finish before starting the next.
                if index >= limit, let finished = await group.next() { ordered[finished.0] = finished.1 }
                group.addTask {
                    events.emit(
                        .toolStart(.init(toolName: call.name, toolCallId: call.id, args: call.arguments)), scope)
                    await journal?.toolStarted(turn: turn, call)
                    let started = ContinuousClock.now
                    let outcome: ToolOutcome
                    if call.id == cutOff {
                        outcome = ToolOutcome(
                            content: Self.cutOffMessage(call), isError: true)
                    } else if case .denied(let reason)? = decisions[call.id] {
                        outcome = ToolOutcome(content: Self.deniedMessage(call, reason: reason), isError: true)
                    } else if let tool = byName[call.name] {
                        let context = ToolContext(
                            toolCallId: call.id, session: scope.session ?? "default",
                            log: { level, message in
                                events.emit(.log(.init(level: level, message: message)), scope)
                            })
                        outcome = await withSpan("execute_tool \(call.name)", ofKind: .internal) { span in
                            span.attributes[GenAITracing.Attribute.operationName] = "execute_tool"
                            span.attributes[GenAITracing.Attribute.toolName] = call.name
                            span.attributes[GenAITracing.Attribute.toolCallId] = call.id
                            if GenAITracing.recordsContent {
                                span.attributes[GenAITracing.Attribute.toolCallArguments] = call.arguments.jsonString
                            }
                            let outcome = await tool.execute(call.arguments, context)
                            if GenAITracing.recordsContent {
                                span.attributes[GenAITracing.Attribute.toolCallResult] = outcome.content
                            }
                            if outcome.isError {
                                span.attributes[GenAITracing.Attribute.errorType] = "tool_error"
                                span.setStatus(SpanStatus(code: .error))
                            }
                            return outcome
                        }
                    } else {
                        let known = byName.keys.sorted().joined(separator: ", ")
                        outcome = ToolOutcome(
                            content: "unknown tool \(call.name); available tools: \(known)", isError: true)
                    }
                    events.emit(
                        .tool(
                            .init(
                                toolName: call.name, toolCallId: call.id, isError: outcome.isError,
                                result: outcome.content, durationMs: started.millisecondsElapsed)), scope)
                    await journal?.toolFinished(turn: turn, call, result: Self.resultMessage(call, outcome))
                    return (index, outcome)
                }
            }
            for await (index, outcome) in group { ordered[index] = outcome }
            return ordered.map { $0! }
        }
        try Task.checkCancellation()
        return zip(calls, results).map { call, outcome in (outcome, Self.resultMessage(call, outcome)) }
    }

    /// Why a call that needs approval is denied where nobody can be asked.
    static let noApproverReason = "this call needs a human's approval, and nobody can be asked here"

    /// What the model reads for a call a human denied (or that expired undecided).
    static func deniedMessage(_ call: ToolCall, reason: String?) -> String {
        "Not run: the call to \(call.name) was denied"
            + (reason.map { $0.isEmpty ? "" : " (\($0))" } ?? "") + ". Do not retry it unchanged; continue without it or ask the user."
    }

    /// What the model reads for a call whose arguments the token limit cut off.
    /// (No number is quoted: providers adjust the limit, e.g. for thinking budgets.)
    static func cutOffMessage(_ call: ToolCall) -> String {
        "Not run: your output reached the output token limit while you were writing this call to \(call.name), "
            + "so its arguments were cut off and nothing was executed. Call the tool again with shorter "
            + "arguments, or split the work into several smaller calls."
    }

    private static func resultMessage(_ call: ToolCall, _ outcome: ToolOutcome) -> ToolResultMessage {
        ToolResultMessage(toolCallId: call.id, toolName: call.name, content: outcome.content, isError: outcome.isError)
    }
}

extension AssistantMessage {
    /// The tool call the output token limit cut off: when a turn stops for `length` and its last
    /// block is a tool call, that call's arguments are incomplete (earlier calls were finished
    /// before the model moved on).
    var cutOffToolCallId: String? {
        guard stopReason == .length, case .toolCall(let call)? = content.last else { return nil }
        return call.id
    }
}

extension ContinuousClock.Instant {
    /// Whole milliseconds since this instant.
    var millisecondsElapsed: Int {
        let elapsed = ContinuousClock.now - self
        return elapsed.wholeMilliseconds
    }
}
