import Foundation

/// One observable event of a run or an agent instance (the event types and their fields: docs/runtime.md, "Events").
///
/// Encodes to a flat JSON object: `{"v":1,"type":"turn","eventIndex":3,"timestamp":"…",
/// "runId":"…","operationId":"…","durationMs":12,…}` — envelope, correlation and payload
/// fields side by side.
public struct FlueEvent: Sendable, Hashable {
    /// Wire format version; always 1.
    public var v: Int = 1
    /// Position within its stream context, from 0.
    public var eventIndex: Int
    public var timestamp: Date
    public var correlation: EventCorrelation
    public var body: Body

    public init(eventIndex: Int, timestamp: Date = Date(), correlation: EventCorrelation, body: Body) {
        self.eventIndex = eventIndex
        self.timestamp = timestamp
        self.correlation = correlation
        self.body = body
    }

    /// The event's type string, e.g. `tool_start`.
    public var type: String { body.type }
}

extension FlueEvent {
    /// What happened, with its typed payload.
    public enum Body: Sendable, Hashable {
        case runStart(RunStart)
        case runResume(RunResume)
        case runEnd(Completion)
        case agentStart
        case agentEnd
        case idle
        case operationStart(OperationStart)
        case operation(OperationEnd)
        case taskStart(TaskStart)
        case task(Completion)
        case turnStart(TurnStart)
        case turn(TurnEnd)
        case textDelta(Delta)
        case thinkingStart
        case thinkingDelta(Delta)
        case thinkingEnd
        case toolStart(ToolStart)
        case tool(ToolEnd)
        case compactionStart(CompactionStart)
        case compaction(CompactionEnd)
        case log(LogRecord)
        case submissionSettled(SubmissionSettled)
        /// A tool call waits for a human decision (durable submissions).
        case approvalRequested(ApprovalRequested)
        /// A human decided on a tool call (or its approval expired).
        case approvalDecided(ApprovalDecided)

        public var type: String {
            switch self {
            case .runStart: "run_start"
            case .runResume: "run_resume"
            case .runEnd: "run_end"
            case .agentStart: "agent_start"
            case .agentEnd: "agent_end"
            case .idle: "idle"
            case .operationStart: "operation_start"
            case .operation: "operation"
            case .taskStart: "task_start"
            case .task: "task"
            case .turnStart: "turn_start"
            case .turn: "turn"
            case .textDelta: "text_delta"
            case .thinkingStart: "thinking_start"
            case .thinkingDelta: "thinking_delta"
            case .thinkingEnd: "thinking_end"
            case .toolStart: "tool_start"
            case .tool: "tool"
            case .compactionStart: "compaction_start"
            case .compaction: "compaction"
            case .log: "log"
            case .submissionSettled: "submission_settled"
            case .approvalRequested: "approval_requested"
            case .approvalDecided: "approval_decided"
            }
        }
    }

    public struct RunStart: Sendable, Hashable, Codable {
        public var workflowName: String
        public var payload: JSONValue
        public var startedAt: Date
        public init(workflowName: String, payload: JSONValue, startedAt: Date) {
            self.workflowName = workflowName
            self.payload = payload
            self.startedAt = startedAt
        }
    }

    /// A run is taken over after its process stopped (recovery terminalizes it next).
    public struct RunResume: Sendable, Hashable, Codable {
        public var workflowName: String?
        public var startedAt: Date?
        public var reason: String
        public init(workflowName: String? = nil, startedAt: Date? = nil, reason: String) {
            self.workflowName = workflowName
            self.startedAt = startedAt
            self.reason = reason
        }
    }

    /// How a run (`run_end`) or a task (`task`) ended.
    public struct Completion: Sendable, Hashable, Codable {
        public var result: JSONValue?
        public var isError: Bool
        public var error: JSONValue?
        public var durationMs: Int
        /// Tokens and cost of the run's model turns (on `run_end`).
        public var usage: Usage?
        public init(result: JSONValue?, isError: Bool, error: JSONValue?, durationMs: Int, usage: Usage? = nil) {
            self.result = result
            self.isError = isError
            self.error = error
            self.durationMs = durationMs
            self.usage = usage
        }
    }

    /// What an operation is, as `operationKind` on the wire (Flue's names).
    public enum OperationKind: String, Sendable, Hashable, Codable {
        case prompt, skill, task, shell, compact
    }

    public struct OperationStart: Sendable, Hashable, Codable {
        public var operationKind: OperationKind
        public init(operationKind: OperationKind) { self.operationKind = operationKind }
    }

    public struct OperationEnd: Sendable, Hashable, Codable {
        public var operationKind: OperationKind
        public var durationMs: Int
        public var isError: Bool
        public var error: JSONValue?
        public var result: JSONValue?
        public var usage: Usage
        public init(
            operationKind: OperationKind, durationMs: Int, isError: Bool, error: JSONValue?, result: JSONValue?,
            usage: Usage
        ) {
            self.operationKind = operationKind
            self.durationMs = durationMs
            self.isError = isError
            self.error = error
            self.result = result
            self.usage = usage
        }
    }

    public struct TaskStart: Sendable, Hashable, Codable {
        public var prompt: String
        public var agent: String?
        public init(prompt: String, agent: String?) {
            self.prompt = prompt
            self.agent = agent
        }
    }

    public struct TurnStart: Sendable, Hashable, Codable {
        /// Why the model is called: `agent` for loop turns, `compaction` for summaries.
        public enum Purpose: String, Sendable, Hashable, Codable {
            case agent, compaction
        }

        public var purpose: Purpose
        public var model: String
        public init(purpose: Purpose, model: String) {
            self.purpose = purpose
            self.model = model
        }
    }

    public struct TurnEnd: Sendable, Hashable, Codable {
        public var durationMs: Int
        public var model: String
        public var usage: Usage
        public var stopReason: StopReason
        public var isError: Bool
        public var error: JSONValue?
        public init(
            durationMs: Int, model: String, usage: Usage, stopReason: StopReason, isError: Bool,
            error: JSONValue?
        ) {
            self.durationMs = durationMs
            self.model = model
            self.usage = usage
            self.stopReason = stopReason
            self.isError = isError
            self.error = error
        }
    }

    public struct Delta: Sendable, Hashable, Codable {
        public var delta: String
        public init(delta: String) { self.delta = delta }
    }

    public struct ToolStart: Sendable, Hashable, Codable {
        public var toolName: String
        public var toolCallId: String
        public var args: JSONValue
        public init(toolName: String, toolCallId: String, args: JSONValue) {
            self.toolName = toolName
            self.toolCallId = toolCallId
            self.args = args
        }
    }

    public struct ToolEnd: Sendable, Hashable, Codable {
        public var toolName: String
        public var toolCallId: String
        public var isError: Bool
        public var result: String
        public var durationMs: Int
        public init(toolName: String, toolCallId: String, isError: Bool, result: String, durationMs: Int) {
            self.toolName = toolName
            self.toolCallId = toolCallId
            self.isError = isError
            self.result = result
            self.durationMs = durationMs
        }
    }

    public struct CompactionStart: Sendable, Hashable, Codable {
        public var reason: String
        public var estimatedTokens: Int
        public init(reason: String, estimatedTokens: Int) {
            self.reason = reason
            self.estimatedTokens = estimatedTokens
        }
    }

    public struct CompactionEnd: Sendable, Hashable, Codable {
        public var messagesBefore: Int
        public var messagesAfter: Int
        public var usage: Usage
        public init(messagesBefore: Int, messagesAfter: Int, usage: Usage) {
            self.messagesBefore = messagesBefore
            self.messagesAfter = messagesAfter
            self.usage = usage
        }
    }

    /// A `log` event: what `context.log.info(…)` and friends emit.
    public struct LogRecord: Sendable, Hashable, Codable {
        /// `level` on the wire.
        public enum Level: String, Sendable, Hashable, Codable {
            case debug, info, warn, error
        }

        public var level: Level
        public var message: String
        public var attributes: [String: JSONValue]
        public init(level: Level, message: String, attributes: [String: JSONValue] = [:]) {
            self.level = level
            self.message = message
            self.attributes = attributes
        }
    }

    /// Recovery settled a submission; its id travels in the correlation's `submissionId`.
    /// `approval_requested`: `{callId, tool, arguments, expiresAt}`.
    public struct ApprovalRequested: Sendable, Hashable, Codable {
        public var callId: String
        public var tool: String
        public var arguments: JSONValue
        /// RFC 3339 with milliseconds: when the call is denied if nobody decided.
        public var expiresAt: String
        public init(callId: String, tool: String, arguments: JSONValue, expiresAt: String) {
            self.callId = callId
            self.tool = tool
            self.arguments = arguments
            self.expiresAt = expiresAt
        }
    }

    /// `approval_decided`: `{callId, decision: approve|deny, reason?}` (`reason` "expired" when
    /// nobody decided in time).
    public struct ApprovalDecided: Sendable, Hashable, Codable {
        public var callId: String
        public var decision: String
        public var reason: String?
        public init(callId: String, decision: String, reason: String?) {
            self.callId = callId
            self.decision = decision
            self.reason = reason
        }
    }

    public struct SubmissionSettled: Sendable, Hashable, Codable {
        /// How the submission ended (`outcome` on the wire).
        public enum Outcome: String, Sendable, Hashable, Codable {
            case completed, failed
            /// Cancelled (`error.type` is `aborted`).
            case aborted
        }

        public var outcome: Outcome
        public var error: JSONValue?
        public init(outcome: Outcome, error: JSONValue?) {
            self.outcome = outcome
            self.error = error
        }
    }
}

extension FlueEvent: Codable {
    private enum EnvelopeKeys: String, CodingKey { case v, type, eventIndex, timestamp }

    public func encode(to encoder: any Encoder) throws {
        var envelope = encoder.container(keyedBy: EnvelopeKeys.self)
        try envelope.encode(v, forKey: .v)
        try envelope.encode(type, forKey: .type)
        try envelope.encode(eventIndex, forKey: .eventIndex)
        try envelope.encode(Self.formatTimestamp(timestamp), forKey: .timestamp)
        try correlation.encode(to: encoder)
        switch body {
        case .agentStart, .agentEnd, .idle, .thinkingStart, .thinkingEnd: break
        case .runStart(let p): try p.encode(to: encoder)
        case .runResume(let p): try p.encode(to: encoder)
        case .runEnd(let p): try p.encode(to: encoder)
        case .operationStart(let p): try p.encode(to: encoder)
        case .operation(let p): try p.encode(to: encoder)
        case .taskStart(let p): try p.encode(to: encoder)
        case .task(let p): try p.encode(to: encoder)
        case .turnStart(let p): try p.encode(to: encoder)
        case .turn(let p): try p.encode(to: encoder)
        case .textDelta(let p), .thinkingDelta(let p): try p.encode(to: encoder)
        case .toolStart(let p): try p.encode(to: encoder)
        case .tool(let p): try p.encode(to: encoder)
        case .compactionStart(let p): try p.encode(to: encoder)
        case .compaction(let p): try p.encode(to: encoder)
        case .log(let p): try p.encode(to: encoder)
        case .submissionSettled(let p): try p.encode(to: encoder)
        case .approvalRequested(let p): try p.encode(to: encoder)
        case .approvalDecided(let p): try p.encode(to: encoder)
        }
    }

    public init(from decoder: any Decoder) throws {
        let envelope = try decoder.container(keyedBy: EnvelopeKeys.self)
        v = try envelope.decode(Int.self, forKey: .v)
        eventIndex = try envelope.decode(Int.self, forKey: .eventIndex)
        let stamp = try envelope.decode(String.self, forKey: .timestamp)
        guard let date = Self.parseTimestamp(stamp) else {
            throw DecodingError.dataCorruptedError(
                forKey: .timestamp, in: envelope, debugDescription: "not an ISO-8601 timestamp: \(stamp)")
        }
        timestamp = date
        correlation = try EventCorrelation(from: decoder)
        let type = try envelope.decode(String.self, forKey: .type)
        switch type {
        case "run_start": body = .runStart(try RunStart(from: decoder))
        case "run_resume": body = .runResume(try RunResume(from: decoder))
        case "run_end": body = .runEnd(try Completion(from: decoder))
        case "agent_start": body = .agentStart
        case "agent_end": body = .agentEnd
        case "idle": body = .idle
        case "operation_start": body = .operationStart(try OperationStart(from: decoder))
        case "operation": body = .operation(try OperationEnd(from: decoder))
        case "task_start": body = .taskStart(try TaskStart(from: decoder))
        case "task": body = .task(try Completion(from: decoder))
        case "turn_start": body = .turnStart(try TurnStart(from: decoder))
        case "turn": body = .turn(try TurnEnd(from: decoder))
        case "text_delta": body = .textDelta(try Delta(from: decoder))
        case "thinking_start": body = .thinkingStart
        case "thinking_delta": body = .thinkingDelta(try Delta(from: decoder))
        case "thinking_end": body = .thinkingEnd
        case "tool_start": body = .toolStart(try ToolStart(from: decoder))
        case "tool": body = .tool(try ToolEnd(from: decoder))
        case "compaction_start": body = .compactionStart(try CompactionStart(from: decoder))
        case "compaction": body = .compaction(try CompactionEnd(from: decoder))
        case "log": body = .log(try LogRecord(from: decoder))
        case "submission_settled": body = .submissionSettled(try SubmissionSettled(from: decoder))
        case "approval_requested": body = .approvalRequested(try ApprovalRequested(from: decoder))
        case "approval_decided": body = .approvalDecided(try ApprovalDecided(from: decoder))
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .type, in: envelope, debugDescription: "unknown event type \(type)")
        }
    }

    /// ISO-8601 with milliseconds, UTC: `2026-11-25T14:01:26.123Z`.
    public static func formatTimestamp(_ date: Date) -> String {
        date.formatted(
            Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt))
    }

    public static func parseTimestamp(_ text: String) -> Date? {
        (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text))
            ?? (try? Date.ISO8601FormatStyle().parse(text))
    }
}
