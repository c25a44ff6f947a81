/// An agent definition: which model, what instructions, which tools, which subagents.
///
/// The same type describes a top-level agent and a subagent profile (used by `task`).
/// ```swift
/// let assistant = try Agent(
///     name: "assistant",
///     instructions: "You help with travel questions.",
///     tools: [weather])
/// ```
public struct Agent: Sendable {
    /// A ``DefinitionName``; addresses the agent (`/agents/<name>/<id>`, `task(agent:)`).
    public var name: String
    /// One line telling a parent model what this agent is for (shown in the `task` tool).
    public var description: String?
    /// The model; `nil` uses the resolver's default (`MODEL_SPECIFIER`).
    public var model: ModelSpecifier?
    /// The system instructions.
    public var instructions: String
    /// Custom tools offered on every turn.
    public var tools: [any Tool]
    /// Profiles the model may delegate to through the `task` tool.
    public var subagents: [Agent]
    /// Reasoning effort where the model supports it.
    public var thinking: ThinkingLevel
    /// Model turns allowed in one operation before it fails with `max_turns_exceeded`.
    public var maxTurns: Int
    /// Default limits on turns and tokens for each operation (``Budget``); a prompt's
    /// ``PromptOptions/budget`` (a submission's `budget`) can only tighten them. Unlimited by default.
    public var budget: Budget = .unlimited
    /// Output token cap per model call.
    public var maxOutputTokens: Int
    /// The agent's workspace (``SandboxProvider/virtual(files:)``, or one of your own); `nil`: no
    /// workspace and no built-in tools.
    public var sandbox: SandboxProvider?
    /// The built-in tools the model gets over the sandbox (all by default; ignored without one).
    public var builtinTools: BuiltinTools
    /// Tool calls of one model turn run at once, at most this many (the rest wait their turn);
    /// results always go back in call order.
    public var maxParallelToolCalls: Int
    /// Skills registered from code; the sandbox's `.agents/skills/*/SKILL.md` add to them.
    public var skills: [Skill]
    /// How deep subagent tasks may nest below this agent (4, as in Flue); a deeper `task` fails
    /// with `task_depth_exceeded`. Only the top-level agent's value counts.
    public var maxTaskDepth: Int
    /// When the agent's conversations are summarised to fit the model's context window.
    public var compaction: CompactionPolicy

    /// Names no custom tool may take: the framework injects tools with these names.
    public static let reservedToolNames: Set<String> = ["task", "finish", "give_up", "activate_skill"]

    /// Validates and creates a definition; throws `invalid_definition` on a bad name, duplicate
    /// or reserved tool names, or subagent names that repeat.
    public init(
        name: String, description: String? = nil, model: ModelSpecifier? = nil, instructions: String = "",
        tools: [any Tool] = [], subagents: [Agent] = [], thinking: ThinkingLevel = .off, maxTurns: Int = 32,
        maxOutputTokens: Int = 8192, sandbox: SandboxProvider? = nil, builtinTools: BuiltinTools = .all,
        maxParallelToolCalls: Int = 8, skills: [Skill] = [], maxTaskDepth: Int = 4,
        compaction: CompactionPolicy = .automatic
    ) throws {
        try DefinitionName.check(name, of: "agent")
        guard maxTurns >= 1 else { throw FlueError(.invalidDefinition, "agent \(name): maxTurns must be at least 1") }
        guard compaction.keepRecentTokens >= 0, (compaction.contextWindow ?? 1) > 0, (compaction.reserveTokens ?? 0) >= 0
        else {
            throw FlueError(
                .invalidDefinition,
                "agent \(name): compaction needs a positive context window and non-negative token counts")
        }
        if let window = compaction.contextWindow, let reserve = compaction.reserveTokens, reserve >= window {
            throw FlueError(
                .invalidDefinition,
                "agent \(name): compaction reserveTokens (\(reserve)) must be less than contextWindow (\(window))")
        }
        guard maxTaskDepth >= 0 else { throw FlueError(.invalidDefinition, "agent \(name): maxTaskDepth must not be negative") }
        guard maxParallelToolCalls >= 1 else {
            throw FlueError(.invalidDefinition, "agent \(name): maxParallelToolCalls must be at least 1")
        }
        var seen = Set<String>(sandbox == nil ? [] : builtinTools.selected.map(\.rawValue))
        for tool in tools {
            guard !Self.reservedToolNames.contains(tool.name) else {
                throw FlueError(.toolNameConflict, "agent \(name): tool name \(tool.name) is reserved")
            }
            guard seen.insert(tool.name).inserted else {
                throw FlueError(
                    .toolNameConflict, "agent \(name): two tools (custom or built-in) are named \(tool.name)")
            }
        }
        var skillNames = Set<String>()
        for skill in skills where !skillNames.insert(skill.name).inserted {
            throw FlueError(.invalidDefinition, "agent \(name): two skills are named \(skill.name)")
        }
        var subagentNames = Set<String>()
        for subagent in subagents where !subagentNames.insert(subagent.name).inserted {
            throw FlueError(.invalidDefinition, "agent \(name): two subagents are named \(subagent.name)")
        }
        self.name = name
        self.description = description
        self.model = model
        self.instructions = instructions
        self.tools = tools
        self.subagents = subagents
        self.thinking = thinking
        self.maxTurns = maxTurns
        self.maxOutputTokens = maxOutputTokens
        self.sandbox = sandbox
        self.builtinTools = builtinTools
        self.maxParallelToolCalls = maxParallelToolCalls
        self.skills = skills
        self.maxTaskDepth = maxTaskDepth
        self.compaction = compaction
    }

    /// The system prompt sent on every turn.
    var systemPrompt: String {
        let preamble =
            "You are an autonomous agent running without a human in the loop. Work on your own, "
            + "use the tools you are given, and never ask questions or wait for input."
        return instructions.isEmpty ? preamble : preamble + "\n\n" + instructions
    }
}
