import FluePersistence
import FlueRuntime

/// The decisions stored with a submission, as the agent loop asks for them.
struct RecordApprovalGate: ToolApprovalGate {
    let approvals: [String: ToolApprovalRecord]

    init(_ approvals: [ToolApprovalRecord]) {
        self.approvals = Dictionary(approvals.map { ($0.callId, $0) }, uniquingKeysWith: { _, last in last })
    }

    func decision(for call: ToolCall) async -> ToolApprovalDecision? {
        switch approvals[call.id]?.decision {
        case .approve?: .approved
        case .deny?: .denied(reason: approvals[call.id]?.reason)
        case nil: nil
        }
    }
}
