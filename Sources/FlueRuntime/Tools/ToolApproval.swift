import Foundation

/// A tool whose calls need a human decision before they run: always, or when `isRequired`
/// says so for the call's arguments. Made with ``Tool/requiringApproval(when:)``.
///
/// Where the operation runs as a durable agent submission, the submission waits durably for
/// the decision (`awaiting_approval`, see docs/agents.md); an approved call runs once, a
/// denied (or expired) one is answered to the model as an error result and never runs. Where
/// nobody can be asked (a workflow's session, a prompt without a ``ToolApprovalGate``), the call
/// is denied.
public struct ApprovalGatedTool: Tool {
    public let base: any Tool
    /// Whether a call with these arguments needs approval.
    public let isRequired: @Sendable (JSONValue) -> Bool

    public var name: String { base.name }
    public var description: String { base.description }
    public var parameters: JSONSchema { base.parameters }

    public func call(_ arguments: JSONValue, context: ToolContext) async throws -> String {
        try await base.call(arguments, context: context)
    }
}

extension Tool {
    /// This tool, with each call held for a human decision when `isRequired(arguments)` is true
    /// (by default: every call).
    ///
    /// ```swift
    /// let refund = try FunctionTool(name: "refund", description: "Refunds an order") { (args: Refund) in … }
    ///     .requiringApproval { arguments in (arguments["amount"]?.intValue ?? 0) > 100 }
    /// ```
    public func requiringApproval(when isRequired: @escaping @Sendable (JSONValue) -> Bool = { _ in true })
        -> ApprovalGatedTool
    {
        ApprovalGatedTool(base: self, isRequired: isRequired)
    }
}

/// A human's decision on one tool call.
public enum ToolApprovalDecision: Sendable, Hashable {
    case approved
    /// The call is not run; the model reads `reason` (if any) in the error result.
    case denied(reason: String?)
}

/// Where the agent loop gets decisions on calls that need approval. A host that can wait for
/// people (the engine's durable submissions) provides one through ``PromptOptions/approvals``.
public protocol ToolApprovalGate: Sendable {
    /// The decision on `call`, or `nil` while none was made: the loop then stops with
    /// ``ApprovalRequired`` before running any call of the batch.
    func decision(for call: ToolCall) async -> ToolApprovalDecision?
}

/// Thrown out of an operation when calls of a tool batch wait for a human decision. The
/// assistant message with the calls is in the history; resuming the session (with a gate
/// that has the decisions) runs the batch.
public struct ApprovalRequired: Error, Sendable, CustomStringConvertible {
    /// The calls without a decision, in call order.
    public var calls: [ToolCall]
    public var description: String { "tool calls await approval: \(calls.map(\.name).joined(separator: ", "))" }
}
