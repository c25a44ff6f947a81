import FlueEngine
import FluePersistence
import FlueRuntime
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension FlueRoutes {
    /// How long a cancel request waits for running work to settle before answering `202`.
    static var cancelWait: Duration { .seconds(10) }

    /// `POST /agents/:name/:id/abort`, `GET /agents/:name/:id/submissions[/:submissionId]`,
    /// `POST /agents/:name/:id/submissions/:submissionId/cancel`, `POST /runs/:runId/cancel`.
    func registerControlRoutes(on group: RouterGroup<Context>) {
        let routes = self
        group.post("agents/:name/:id/abort") { request, context in
            try await routes.handle(request) { try await routes.abortInstance(request, context) }
        }
        group.get("agents/:name/:id/submissions") { request, context in
            try await routes.handle(request) { try await routes.listSubmissions(request, context) }
        }
        group.head("agents/:name/:id/submissions") { request, context in
            try await routes.handle(request) { try await routes.listSubmissions(request, context) }
        }
        group.get("agents/:name/:id/submissions/:submissionId") { request, context in
            try await routes.handle(request) { try await routes.readSubmission(request, context) }
        }
        group.head("agents/:name/:id/submissions/:submissionId") { request, context in
            try await routes.handle(request) { try await routes.readSubmission(request, context) }
        }
        group.post("agents/:name/:id/submissions/:submissionId/cancel") { request, context in
            try await routes.handle(request) { try await routes.cancelSubmission(request, context) }
        }
        group.post("runs/:runId/cancel") { request, context in
            try await routes.handle(request) { try await routes.cancelRun(request, context) }
        }
        group.get("agents/:name/:id/approvals") { request, context in
            try await routes.handle(request) { try await routes.listApprovals(request, context) }
        }
        group.head("agents/:name/:id/approvals") { request, context in
            try await routes.handle(request) { try await routes.listApprovals(request, context) }
        }
        group.post("agents/:name/:id/approvals/:callId") { request, context in
            try await routes.handle(request) { try await routes.decideApproval(request, context) }
        }
        let refusals: [(String, [HTTPRequest.Method])] = [
            ("agents/:name/:id/abort", [.post]), ("agents/:name/:id/submissions", [.get, .head]),
            ("agents/:name/:id/submissions/:submissionId", [.get, .head]),
            ("agents/:name/:id/submissions/:submissionId/cancel", [.post]), ("runs/:runId/cancel", [.post]),
            ("agents/:name/:id/approvals", [.get, .head]), ("agents/:name/:id/approvals/:callId", [.post]),
        ]
        for (path, allowed) in refusals {
            for method in [HTTPRequest.Method.get, .head, .post] + Self.otherMethods where !allowed.contains(method) {
                group.on(RouterPath(path), method: method) { request, _ in
                    try await routes.handle(request) { throw FlueHTTPError.methodNotAllowed(request.method, allow: allowed) }
                }
            }
        }
    }

    /// The submission id path parameter, decoded; an id no server issues is simply unknown.
    private func submissionId(_ context: Context) throws -> String {
        let id = try PathParameters.decoded("submissionId", context.parameters)
        guard AgentAddress.isURLSafeId(id) else { throw FlueHTTPError.submissionNotFound(id) }
        return id
    }

    private func abortInstance(_ request: Request, _ context: Context) async throws -> Response {
        let (key, guardResponse) = try await agentAddress(request, context)
        if let guardResponse { return guardResponse }
        let cancellations = try await engine.abort(key)
        var views: [JSONValue] = []
        for cancellation in cancellations {
            views.append(try await settledView(cancellation, key: key).json)
        }
        return Self.json(.ok, ["submissions": .array(views)])
    }

    private func cancelSubmission(_ request: Request, _ context: Context) async throws -> Response {
        let (key, guardResponse) = try await agentAddress(request, context)
        if let guardResponse { return guardResponse }
        let id = try submissionId(context)
        guard let cancellation = try await engine.cancel(submission: id, of: key) else {
            throw FlueHTTPError.submissionNotFound(id)
        }
        if case .alreadySettled(let view) = cancellation {
            throw FlueHTTPError.alreadySettled("Submission \"\(id)\"", outcome: view.json)
        }
        let view = try await settledView(cancellation, key: key)
        return Self.json(view.status.isSettled ? .ok : .accepted, view.json)
    }

    /// The submission after a cancel: a running one is awaited for up to ``cancelWait``.
    private func settledView(_ cancellation: SubmissionCancellation, key: SessionKey) async throws -> SubmissionView {
        guard case .stopping(let view) = cancellation else { return cancellation.submission }
        return try await engine.settledSubmission(
            view.submissionId, of: key, within: Self.cancelWait, abandon: ClientConnection.current?.goneSignal())
    }

    private func readSubmission(_ request: Request, _ context: Context) async throws -> Response {
        let waitForResult = try Self.waitParameter(request)
        let (key, guardResponse) = try await agentAddress(request, context)
        if let guardResponse { return guardResponse }
        let id = try submissionId(context)
        guard var view = try await engine.submission(id, of: key) else { throw FlueHTTPError.submissionNotFound(id) }
        if waitForResult, !view.status.isSettled {
            view = try await engine.settledSubmission(id, of: key, within: nil, abandon: ClientConnection.current?.goneSignal())
        }
        return Self.json(.ok, view.json)
    }

    private func listSubmissions(_ request: Request, _ context: Context) async throws -> Response {
        let (key, guardResponse) = try await agentAddress(request, context)
        if let guardResponse { return guardResponse }
        let query = request.uri.queryParameters
        for (name, _) in query where name != "limit" && name != "cursor" {
            throw FlueHTTPError.invalidRequest("Unknown query parameter \"\(name)\"; use limit and cursor.")
        }
        var limit = 50
        if let raw = query.getAll("limit").last {
            guard let value = Int(raw), (1...1000).contains(value) else {
                throw FlueHTTPError.invalidRequest("limit must be an integer from 1 to 1000.")
            }
            limit = value
        }
        let page: SubmissionPage
        do {
            page = try await engine.submissions(of: key, limit: limit, cursor: query.getAll("cursor").last.map { String($0) })
        } catch let error as FlueError where error.kind == .invalidPayload {
            throw FlueHTTPError.invalidRequest("The cursor is not one this server handed out.")
        }
        var body: [String: JSONValue] = ["submissions": .array(page.submissions.map(\.json))]
        if let next = page.nextCursor { body["nextCursor"] = .string(next) }
        return Self.json(.ok, .object(body))
    }

    private func listApprovals(_ request: Request, _ context: Context) async throws -> Response {
        let (key, guardResponse) = try await agentAddress(request, context)
        if let guardResponse { return guardResponse }
        let pending = try await engine.approvals(of: key)
        return Self.json(.ok, ["approvals": .array(pending.map(\.json))])
    }

    static var decisionShape: String {
        "Approval decisions must use JSON object body { \"decision\": \"approve\" | \"deny\", \"reason\"?: string }."
    }

    private func decideApproval(_ request: Request, _ context: Context) async throws -> Response {
        let (key, guardResponse) = try await agentAddress(request, context)
        if let guardResponse { return guardResponse }
        let callId = try PathParameters.decoded("callId", context.parameters)
        let body = try await JSONBody.read(request, limit: server.configuration.requestBodyLimit)
        guard case .object(let object) = body, let raw = object["decision"]?.stringValue,
            let decision = ToolApprovalRecord.Decision(rawValue: raw)
        else { throw FlueHTTPError.invalidRequest(Self.decisionShape) }
        var reason: String?
        if let value = object["reason"], value != .null {
            guard let text = value.stringValue, text.utf8.count <= 4096 else {
                throw FlueHTTPError.invalidRequest("reason must be a string of at most 4096 bytes.")
            }
            reason = text
        }
        guard AgentAddress.isURLSafeId(callId),
            let outcome = try await engine.decide(approval: callId, of: key, decision: decision, reason: reason)
        else {
            throw FlueHTTPError(
                .notFound, type: "approval_not_found", message: "No tool call \"\(callId)\" of this instance awaits approval.",
                details: "List pending calls with GET /agents/:name/:id/approvals.")
        }
        switch outcome {
        case .decided(let view):
            return Self.json(.ok, view.json)
        case .alreadyDecided(let view):
            throw FlueHTTPError(
                .conflict, type: "already_decided", message: "Tool call \"\(callId)\" was already decided or no longer waits.",
                details: "meta holds the call as it stands.", meta: view.json)
        }
    }

    private func cancelRun(_ request: Request, _ context: Context) async throws -> Response {
        let (runId, guardResponse) = try await runAddress(request, context)
        if let guardResponse { return guardResponse }
        guard let cancellation = try await engine.cancel(run: runId) else { throw FlueHTTPError.runNotFound(runId) }
        switch cancellation {
        case .alreadyEnded(let record):
            throw FlueHTTPError.alreadySettled("Run \"\(runId)\"", outcome: try JSONValue(encoding: record))
        case .stopping(let record):
            let ended =
                try await engine.endedRun(runId, within: Self.cancelWait, abandon: ClientConnection.current?.goneSignal())
                ?? record
            return Self.json(ended.status == .active ? .accepted : .ok, try JSONValue(encoding: ended))
        }
    }
}
