/// Per-call options of `prompt` and `task`.
public struct PromptOptions: Sendable {
    /// Overrides the agent's model for this call.
    public var model: ModelSpecifier?
    /// Overrides the agent's thinking level for this call.
    public var thinking: ThinkingLevel?
    /// Tools added for this call only.
    public var tools: [any Tool]
    /// Images sent with the prompt text.
    public var images: [ImageContent]
    /// For structured results: how many times an invalid or missing result is sent back to the
    /// model before the call fails with `result_unavailable`.
    public var resultRetries: Int
    /// Identifies the input in the saved history (a durable submission id), so a host can tell
    /// after a crash whether the input was applied.
    public var inputId: String?
    /// Receives durable progress of the operation (see ``OperationJournal``).
    public var journal: (any OperationJournal)?
    /// Limits for this call, tightening the agent's ``Agent/budget``.
    public var budget: Budget?
    /// What earlier runs of this operation spent (set by a host that resumes it), counted
    /// against the budget.
    public var budgetSpent = Budget.Spent()
    /// Decisions on tool calls that need approval (``ApprovalGatedTool``); without one such calls
    /// are denied.
    public var approvals: (any ToolApprovalGate)?

    public init(
        model: ModelSpecifier? = nil, thinking: ThinkingLevel? = nil, tools: [any Tool] = [],
        images: [ImageContent] = [], resultRetries: Int = 3, inputId: String? = nil,
        journal: (any OperationJournal)? = nil
    ) {
        self.inputId = inputId
        self.journal = journal
        self.model = model
        self.thinking = thinking
        self.tools = tools
        self.images = images
        self.resultRetries = resultRetries
    }
}

/// The answer to a text prompt.
public struct PromptResponse: Sendable, Hashable, Codable {
    /// The text of the final assistant message.
    public var text: String
    /// Tokens used by every model call of the operation.
    public var usage: Usage
    /// The model that answered.
    public var model: ModelSpecifier

    public init(text: String, usage: Usage, model: ModelSpecifier) {
        self.text = text
        self.usage = usage
        self.model = model
    }

    private enum CodingKeys: String, CodingKey { case text, usage, model }
    private enum ModelKeys: String, CodingKey { case provider, id }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        text = try c.decode(String.self, forKey: .text)
        usage = try c.decode(Usage.self, forKey: .usage)
        let m = try c.nestedContainer(keyedBy: ModelKeys.self, forKey: .model)
        model = ModelSpecifier(
            provider: try m.decode(String.self, forKey: .provider), model: try m.decode(String.self, forKey: .id))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(text, forKey: .text)
        try c.encode(usage, forKey: .usage)
        var m = c.nestedContainer(keyedBy: ModelKeys.self, forKey: .model)
        try m.encode(model.provider, forKey: .provider)
        try m.encode(model.model, forKey: .id)
    }
}

/// The answer to a structured prompt: the decoded value plus the call's accounting.
public struct StructuredResponse<Value: Sendable>: Sendable {
    public var data: Value
    public var usage: Usage
    public var model: ModelSpecifier
}
