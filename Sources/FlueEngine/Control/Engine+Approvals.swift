import FluePersistence
import FlueRuntime
import Foundation

/// A tool call waiting for a human decision (`GET /agents/:name/:id/approvals`):
/// `{callId, submissionId, tool, arguments, requestedAt, expiresAt}`, plus `decision`, `reason`
/// and `decidedAt` once decided.
public struct ApprovalView: Sendable, Hashable {
    public var submissionId: String
    public var approval: ToolApprovalRecord

    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "callId": .string(approval.callId), "submissionId": .string(submissionId), "tool": .string(approval.tool),
            "arguments": approval.arguments, "requestedAt": .string(FlueEvent.formatTimestamp(approval.requestedAt)),
            "expiresAt": .string(FlueEvent.formatTimestamp(approval.expiresAt)),
        ]
        if let decision = approval.decision { object["decision"] = .string(decision.rawValue) }
        if let reason = approval.reason { object["reason"] = .string(reason) }
        if let decidedAt = approval.decidedAt { object["decidedAt"] = .string(FlueEvent.formatTimestamp(decidedAt)) }
        return .object(object)
    }
}

/// What ``Engine/decide(approval:agent:id:decision:reason:)`` did.
public enum ApprovalDecisionOutcome: Sendable, Hashable {
    /// Recorded; the submission resumes (on any process) once none of its calls is pending.
    case decided(ApprovalView)
    /// The call had been decided (or had expired) before: nothing changed.
    case alreadyDecided(ApprovalView)
}

/// Human approval of tool calls.
extension Engine {
    /// The calls of agent instance `id` waiting for a decision, oldest first.
    public func approvals(agent: String, id: String) async throws -> [ApprovalView] {
        try await approvals(of: try checkedKey(agent: agent, id: id))
    }

    package func approvals(of key: SessionKey) async throws -> [ApprovalView] {
        try await coordinator.unsettled(of: key).filter { $0.status == .awaitingApproval }.flatMap { record in
            record.approvals.filter { $0.decision == nil }.map { ApprovalView(submissionId: record.submissionId, approval: $0) }
        }
    }

    /// Approves or denies a pending call of agent instance `id`, from any process sharing the
    /// store: an approved call runs exactly once when the submission resumes; a denied one is
    /// answered to the model as an error result (with `reason`) and never runs. `nil` when the
    /// instance has no such call (among its unsettled and 100 most recent submissions).
    public func decide(
        approval callId: String, agent: String, id: String, decision: ToolApprovalRecord.Decision, reason: String? = nil
    ) async throws -> ApprovalDecisionOutcome? {
        try await decide(approval: callId, of: try checkedKey(agent: agent, id: id), decision: decision, reason: reason)
    }

    package func decide(
        approval callId: String, of key: SessionKey, decision: ToolApprovalRecord.Decision, reason: String?
    ) async throws -> ApprovalDecisionOutcome? {
        let recent = try await stores.submissions.submissions(
            agent: key.agent, instanceId: key.instanceId, before: nil, limit: 100)
        let candidates = recent + (try await coordinator.unsettled(of: key))
        guard let record = candidates.first(where: { $0.approvals.contains { $0.callId == callId } }) else { return nil }
        guard let result = try await coordinator.decide(record, callId: callId, decision: decision, reason: reason) else {
            return nil
        }
        switch result {
        case .decided(let updated), .alreadyDecided(let updated):
            guard let approval = updated.approvals.first(where: { $0.callId == callId }) else { return nil }
            let view = ApprovalView(submissionId: updated.submissionId, approval: approval)
            if case .decided = result { return .decided(view) }
            return .alreadyDecided(view)
        }
    }
}
