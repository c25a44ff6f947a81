/// The identifiers that tie an event to its run or agent instance, session, operation and turn.
/// Absent fields are omitted from the JSON.
public struct EventCorrelation: Sendable, Hashable, Codable {
    public var runId: String?
    public var instanceId: String?
    public var dispatchId: String?
    public var submissionId: String?
    public var harness: String?
    public var session: String?
    public var parentSession: String?
    public var taskId: String?
    public var operationId: String?
    public var turnId: String?

    public init(
        runId: String? = nil, instanceId: String? = nil, dispatchId: String? = nil,
        submissionId: String? = nil, harness: String? = nil, session: String? = nil,
        parentSession: String? = nil, taskId: String? = nil, operationId: String? = nil,
        turnId: String? = nil
    ) {
        self.runId = runId
        self.instanceId = instanceId
        self.dispatchId = dispatchId
        self.submissionId = submissionId
        self.harness = harness
        self.session = session
        self.parentSession = parentSession
        self.taskId = taskId
        self.operationId = operationId
        self.turnId = turnId
    }

    /// This correlation with every field that `other` sets overriding ours.
    public func merging(_ other: EventCorrelation) -> EventCorrelation {
        EventCorrelation(
            runId: other.runId ?? runId, instanceId: other.instanceId ?? instanceId,
            dispatchId: other.dispatchId ?? dispatchId, submissionId: other.submissionId ?? submissionId,
            harness: other.harness ?? harness, session: other.session ?? session,
            parentSession: other.parentSession ?? parentSession, taskId: other.taskId ?? taskId,
            operationId: other.operationId ?? operationId, turnId: other.turnId ?? turnId)
    }
}
