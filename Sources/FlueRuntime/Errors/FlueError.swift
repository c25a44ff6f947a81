/// Every error the runtime raises on purpose: a stable machine-readable `type`, a message for
/// humans, and structured `details`.
///
/// The `type` strings are part of the public contract (they reach HTTP clients in the error
/// envelope), so they never change once released.
public struct FlueError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The stable error kinds.
    public struct Kind: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// No model was named by the call, the agent, or `MODEL_SPECIFIER`.
        public static let modelNotConfigured = Kind(rawValue: "model_not_configured")
        /// A model specifier is not `provider/model`.
        public static let invalidModelSpecifier = Kind(rawValue: "invalid_model_specifier")
        /// The provider id is neither built in nor registered.
        public static let providerNotConfigured = Kind(rawValue: "provider_not_configured")
        /// The provider needs a key and its environment variable is unset.
        public static let missingAPIKey = Kind(rawValue: "missing_api_key")
        /// The model API answered with an error, or could not be reached, after retries.
        public static let modelRequestFailed = Kind(rawValue: "model_request_failed")
        /// The model API refused the request because the conversation does not fit the model's
        /// context window (Anthropic "prompt is too long", OpenAI `context_length_exceeded`). The
        /// agent loop compacts once and retries; when that is not possible the operation fails
        /// with `operation_failed` whose `details.reason` carries this error.
        public static let contextWindowExceeded = Kind(rawValue: "context_window_exceeded")
        /// The model's stream broke after output had started; it is not retried.
        public static let modelStreamInterrupted = Kind(rawValue: "model_stream_interrupted")
        /// An operation (prompt, task) failed; `details.reason` says why.
        public static let operationFailed = Kind(rawValue: "operation_failed")
        /// Tool arguments did not decode into the tool's parameter type.
        public static let toolInputValidation = Kind(rawValue: "tool_input_validation")
        /// Two tools share a name, or a tool uses a reserved name.
        public static let toolNameConflict = Kind(rawValue: "tool_name_conflict")
        /// The model did not produce a valid structured result within the allowed attempts.
        public static let resultUnavailable = Kind(rawValue: "result_unavailable")
        /// The agent loop reached its turn limit.
        public static let maxTurnsExceeded = Kind(rawValue: "max_turns_exceeded")
        /// A session already runs an operation.
        public static let sessionBusy = Kind(rawValue: "session_busy")
        /// `task` named a subagent the agent does not declare.
        public static let subagentNotDeclared = Kind(rawValue: "subagent_not_declared")
        /// Subagent tasks nested deeper than the limit.
        public static let taskDepthExceeded = Kind(rawValue: "task_depth_exceeded")
        /// A workflow payload does not decode into the workflow's payload type.
        public static let invalidPayload = Kind(rawValue: "invalid_payload")
        /// A definition is invalid (bad name, duplicate tool, ...).
        public static let invalidDefinition = Kind(rawValue: "invalid_definition")
        /// A durable submission ran past its timeout before starting another model turn.
        public static let submissionTimeout = Kind(rawValue: "submission_timeout")
        /// Recovery could not safely continue an interrupted submission.
        public static let submissionInterrupted = Kind(rawValue: "submission_interrupted")
        /// A durable submission used all its attempts.
        public static let submissionRetryExhausted = Kind(rawValue: "submission_retry_exhausted")
        /// An id was reused with a different payload (e.g. a dispatch id).
        public static let conflict = Kind(rawValue: "conflict")
        /// The agent is not registered with the host.
        public static let agentNotRegistered = Kind(rawValue: "agent_not_registered")
        /// A sandbox path names nothing (no such file or directory).
        public static let fileNotFound = Kind(rawValue: "file_not_found")
        /// A sandbox path leads outside the sandbox's root (`..` past the root, a symlink out).
        public static let pathOutsideSandbox = Kind(rawValue: "path_outside_sandbox")
        /// `session.skill` named a skill neither the agent nor its sandbox has.
        public static let skillNotFound = Kind(rawValue: "skill_not_found")
        /// A file operation does not fit what is at the path (a directory read as a file, …).
        public static let invalidFileOperation = Kind(rawValue: "invalid_file_operation")
        /// A sandbox cannot be set up on this host (e.g. bubblewrap isolation was asked for and
        /// `bwrap` is not installed or does not work here).
        public static let sandboxUnavailable = Kind(rawValue: "sandbox_unavailable")
        /// The work was cancelled (`POST …/abort`, `…/cancel`, `Engine.abort`/`cancel`). A
        /// submission settles with status `aborted`; a run ends errored with this type.
        public static let aborted = Kind(rawValue: "aborted")
        /// A submission used up its turn or token budget; it fails after the turn that crossed it.
        public static let budgetExceeded = Kind(rawValue: "budget_exceeded")
    }

    public var kind: Kind
    public var message: String
    public var details: [String: JSONValue]

    public init(_ kind: Kind, _ message: String, details: [String: JSONValue] = [:]) {
        self.kind = kind
        self.message = message
        self.details = details
    }

    /// The stable type string, e.g. `operation_failed`.
    public var type: String { kind.rawValue }

    public var description: String { "\(kind.rawValue): \(message)" }

    /// The error as a JSON object `{type, message, details}` (what events and envelopes carry).
    public var json: JSONValue {
        ["type": .string(type), "message": .string(message), "details": .object(details)]
    }
}

extension FlueError {
    /// Wraps any error as a JSON description for events, keeping `FlueError` fields intact.
    public static func describe(_ error: any Error) -> JSONValue {
        if let flue = error as? FlueError { return flue.json }
        if error is CancellationError {
            return ["type": "aborted", "message": "the operation was cancelled", "details": [:]]
        }
        return ["type": "error", "message": .string(String(describing: error)), "details": [:]]
    }
}

/// A failure of the host's infrastructure (its database, say) rather than of the operation itself.
/// Sessions pass such errors through unchanged instead of reporting `operation_failed`, so a host
/// can tell "retry later" from "this prompt failed".
public protocol InfrastructureError: Error {}
