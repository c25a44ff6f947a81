import FlueRuntime
import Foundation

extension FlueClient {
    /// `POST /workflows/:name`.
    public struct Workflows: Sendable {
        let client: FlueClient

        /// Starts a run: `202 {runId, streamUrl, offset}`. The same `idempotencyKey` and payload
        /// name the same run on a retry.
        public func start(_ name: String, payload: some Encodable, idempotencyKey: String? = nil) async throws -> RunReceipt {
            let (_, json) = try await client.json(
                .POST, "/workflows/\(PathSegment.encoded(name))", body: try FlueClient.encode(payload),
                extraHeaders: idempotencyKey.map { ["idempotency-key": $0] } ?? [:])
            return try FlueClient.decode(RunReceipt.self, from: json, "run receipt")
        }

        /// Starts a run and waits for its result (`?wait=result`), decoded as `Result`. A failed
        /// run throws `.api` with the run's error type (status 500).
        public func run<Result: Decodable>(
            _ name: String, payload: some Encodable, as type: Result.Type = Result.self, idempotencyKey: String? = nil
        ) async throws -> Result {
            let (_, json) = try await client.json(
                .POST, "/workflows/\(PathSegment.encoded(name))", query: [("wait", "result")],
                body: try FlueClient.encode(payload), extraHeaders: idempotencyKey.map { ["idempotency-key": $0] } ?? [:],
                waits: true)
            return try FlueClient.decode(Result.self, from: json["result"] ?? .null, "result of workflow \(name)")
        }
    }

    /// `/runs/:runId`.
    public struct Runs: Sendable {
        let client: FlueClient

        /// The run record (`GET /runs/:runId?meta`).
        public func record(_ runId: String) async throws -> RunRecord {
            let (_, json) = try await client.json(.GET, "/runs/\(PathSegment.encoded(runId))", query: [("meta", "")])
            return try FlueClient.decode(RunRecord.self, from: json, "run record")
        }

        /// Cancels an active run (`POST /runs/:runId/cancel`) and returns its record (still
        /// `active` if it had not ended within the server's wait). An ended run throws `.api`
        /// `409 already_settled`.
        @discardableResult
        public func cancel(_ runId: String) async throws -> RunRecord {
            let (_, json) = try await client.json(.POST, "/runs/\(PathSegment.encoded(runId))/cancel", waits: true)
            return try FlueClient.decode(RunRecord.self, from: json, "run record")
        }
    }

    /// `POST /agents/:name/:id`.
    public struct Agents: Sendable {
        let client: FlueClient

        /// Queues a prompt: `202 {submissionId, streamUrl, offset}`.
        public func send(
            _ name: String, _ id: String, message: String, images: [JSONValue] = [], budget: JSONValue? = nil,
            idempotencyKey: String? = nil
        ) async throws -> SubmissionReceipt {
            let (_, json) = try await client.json(
                .POST, FlueClient.instancePath(name, id), body: Self.body(message, images, budget),
                extraHeaders: idempotencyKey.map { ["idempotency-key": $0] } ?? [:])
            return try FlueClient.decode(SubmissionReceipt.self, from: json, "submission receipt")
        }

        /// Prompts and waits for the answer (`?wait=result`). A failed submission throws `.api`
        /// with its error type.
        public func prompt(
            _ name: String, _ id: String, message: String, images: [JSONValue] = [], budget: JSONValue? = nil,
            idempotencyKey: String? = nil
        ) async throws -> PromptResult {
            let (_, json) = try await client.json(
                .POST, FlueClient.instancePath(name, id), query: [("wait", "result")], body: Self.body(message, images, budget),
                extraHeaders: idempotencyKey.map { ["idempotency-key": $0] } ?? [:], waits: true)
            return try FlueClient.decode(PromptResult.self, from: json, "prompt result")
        }

        /// Stops the running submission of the instance and every queued one
        /// (`POST /agents/:name/:id/abort`); returns them as they ended.
        @discardableResult
        public func abort(_ name: String, _ id: String) async throws -> [Submission] {
            let (_, json) = try await client.json(.POST, FlueClient.instancePath(name, id) + "/abort", waits: true)
            return try FlueClient.decode([Submission].self, from: json["submissions"] ?? .array([]), "aborted submissions")
        }

        static func body(_ message: String, _ images: [JSONValue], _ budget: JSONValue?) -> JSONValue {
            var object: [String: JSONValue] = ["message": .string(message)]
            if !images.isEmpty { object["images"] = .array(images) }
            if let budget { object["budget"] = budget }
            return .object(object)
        }
    }

    /// `/agents/:name/:id/submissions`.
    public struct Submissions: Sendable {
        let client: FlueClient

        /// One submission; with `waitForResult` the call returns once it settled (on any replica).
        public func get(agent: String, id: String, submissionId: String, waitForResult: Bool = false) async throws -> Submission {
            let (_, json) = try await client.json(
                .GET, FlueClient.instancePath(agent, id) + "/submissions/\(PathSegment.encoded(submissionId))",
                query: waitForResult ? [("wait", "result")] : [], waits: waitForResult)
            return try FlueClient.decode(Submission.self, from: json, "submission")
        }

        /// The instance's submissions, newest first, `limit` (1–1000) per page.
        public func list(agent: String, id: String, limit: Int = 50, cursor: String? = nil) async throws -> SubmissionPage {
            var query = [("limit", String(limit))]
            if let cursor { query.append(("cursor", cursor)) }
            let (_, json) = try await client.json(.GET, FlueClient.instancePath(agent, id) + "/submissions", query: query)
            return try FlueClient.decode(SubmissionPage.self, from: json, "submission page")
        }

        /// Cancels one submission, running or queued. A settled one throws `.api` `409 already_settled`.
        @discardableResult
        public func cancel(agent: String, id: String, submissionId: String) async throws -> Submission {
            let (_, json) = try await client.json(
                .POST, FlueClient.instancePath(agent, id) + "/submissions/\(PathSegment.encoded(submissionId))/cancel",
                waits: true)
            return try FlueClient.decode(Submission.self, from: json, "submission")
        }
    }

    /// `/agents/:name/:id/approvals`.
    public struct Approvals: Sendable {
        let client: FlueClient

        /// The tool calls of the instance waiting for a decision.
        public func list(agent: String, id: String) async throws -> [PendingApproval] {
            let (_, json) = try await client.json(.GET, FlueClient.instancePath(agent, id) + "/approvals")
            return try FlueClient.decode([PendingApproval].self, from: json["approvals"] ?? .array([]), "approvals")
        }

        /// Approves or denies a call; the submission resumes on any replica. A second decision
        /// throws `.api` `409 already_decided`.
        public func decide(agent: String, id: String, callId: String, _ decision: Decision, reason: String? = nil) async throws {
            var body: [String: JSONValue] = ["decision": .string(decision.rawValue)]
            if let reason { body["reason"] = .string(reason) }
            _ = try await client.json(
                .POST, FlueClient.instancePath(agent, id) + "/approvals/\(PathSegment.encoded(callId))", body: .object(body))
        }
    }

    static func instancePath(_ name: String, _ id: String) -> String {
        "/agents/\(PathSegment.encoded(name))/\(PathSegment.encoded(id))"
    }

    static func encode(_ value: some Encodable) throws -> JSONValue {
        do {
            return try JSONValue(parsing: JSONEncoder.flue.encode(value))
        } catch {
            throw FlueClientError.invalidArgument("the payload does not encode as JSON: \(error)")
        }
    }
}
