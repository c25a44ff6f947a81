import FlueRuntime
import Foundation

extension FlueClient {
    /// `202` of `POST /workflows/:name`: where the run's events are read.
    public struct RunReceipt: Sendable, Hashable, Decodable {
        public var runId: String
        public var streamUrl: String
        /// The start of the run's stream.
        public var offset: String
    }

    /// `GET /runs/:runId?meta`.
    public struct RunRecord: Sendable, Hashable, Decodable {
        /// `active`, `completed` or `errored`.
        public var status: String
        public var runId: String
        public var workflowName: String
        public var startedAt: Date
        public var endedAt: Date?
        public var durationMs: Int?
        public var isError: Bool?
        public var payload: JSONValue?
        public var result: JSONValue?
        public var error: JSONValue?
        /// The principal that started it (servers with access control).
        public var startedBy: String?
    }

    /// `202` of `POST /agents/:name/:id`.
    public struct SubmissionReceipt: Sendable, Hashable, Decodable {
        public var submissionId: String
        public var streamUrl: String
        /// Where this prompt's events start on the instance stream.
        public var offset: String
    }

    /// `200` of `POST /agents/:name/:id?wait=result`.
    public struct PromptResult: Sendable, Hashable, Decodable {
        public var submissionId: String
        public var streamUrl: String
        /// Just past this prompt's `submission_settled`.
        public var offset: String
        /// `{text, usage, model, …}` as the agent answered.
        public var result: JSONValue
        /// The answer's text.
        public var text: String { result["text"]?.stringValue ?? "" }
    }

    /// A submission as `GET /agents/:name/:id/submissions/:submissionId` shows it.
    public struct Submission: Sendable, Hashable, Decodable {
        public var submissionId: String
        /// `queued`, `running`, `awaiting_approval`, `completed`, `failed` or `aborted`.
        public var status: String
        public var admittedAt: Date?
        public var settledAt: Date?
        public var attempts: Int?
        public var result: JSONValue?
        public var error: JSONValue?
        public var offset: String?

        public var isSettled: Bool { ["completed", "failed", "aborted"].contains(status) }
    }

    /// A page of submissions, newest first.
    public struct SubmissionPage: Sendable, Hashable, Decodable {
        public var submissions: [Submission]
        /// Pass to the next `list` call; `nil` on the last page.
        public var nextCursor: String?
    }

    /// A tool call waiting for a human decision.
    public struct PendingApproval: Sendable, Hashable, Decodable {
        public var callId: String
        public var tool: String
        public var arguments: JSONValue?
        public var submissionId: String?
        public var requestedAt: Date?
        public var expiresAt: Date?
    }

    public enum Decision: String, Sendable, Hashable {
        case approve, deny
    }
}
