import Foundation

/// How far the current attempt of a submission got in its current model turn. Written before
/// and after every step that recovery must reason about, so a process that takes over an
/// abandoned submission knows what is safe to do: repeat a model call, resume from partial
/// output, or report a tool call whose outcome is unknown — never run it again.
public struct TurnJournal: Sendable, Hashable, Codable {
    public enum Phase: String, Sendable, Hashable, Codable {
        /// The input is in the session history; no model call yet.
        case inputApplied = "input_applied"
        /// A model request for `turn` is about to be sent; output streams under `streamKey`.
        case modelRequestStarted = "model_request_started"
        /// The assistant message with tool calls is in the history; `tools` tracks each call.
        case toolsRequested = "tools_requested"
        /// The tool results of `turn` are in the history; the next model turn has not started.
        case toolResultsRecorded = "tool_results_recorded"
        /// The final assistant message (no tool calls) is in the history.
        case committed
    }

    /// One tool call of the current batch.
    public struct ToolCallEntry: Sendable, Hashable, Codable {
        public enum State: String, Sendable, Hashable, Codable { case started, finished }
        public var toolCallId: String
        public var toolName: String
        public var state: State
        public var result: String?
        public var isError: Bool?

        public init(toolCallId: String, toolName: String, state: State, result: String? = nil, isError: Bool? = nil) {
            self.toolCallId = toolCallId
            self.toolName = toolName
            self.state = state
            self.result = result
            self.isError = isError
        }
    }

    public var phase: Phase
    /// The model turn within the attempt, from 0.
    public var turn: Int
    /// Where the turn's streamed output is kept (`<attemptId>:<turn>`).
    public var streamKey: String?
    public var tools: [ToolCallEntry]

    public init(phase: Phase, turn: Int, streamKey: String? = nil, tools: [ToolCallEntry] = []) {
        self.phase = phase
        self.turn = turn
        self.streamKey = streamKey
        self.tools = tools
    }
}
