import FlueEngine
import FluePersistence
import FlueRuntime
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension FlueRoutes {
    /// `POST /agents/:name/:id` admits a prompt; `GET`/`HEAD` read the instance's event stream.
    func registerAgentRoutes(on group: RouterGroup<Context>) {
        let routes = self
        group.post("agents/:name/:id") { request, context in
            try await routes.handle(request) { try await routes.promptAgent(request, context) }
        }
        group.get("agents/:name/:id") { request, context in
            try await routes.handle(request) { try await routes.readAgent(request, context) }
        }
        group.head("agents/:name/:id") { request, context in
            try await routes.handle(request) { try await routes.readAgent(request, context) }
        }
        for method in Self.otherMethods {
            group.on("agents/:name/:id", method: method) { request, _ in
                try await routes.handle(request) {
                    throw FlueHTTPError.methodNotAllowed(request.method, allow: PathParameters.agentMethods)
                }
            }
        }
    }

    /// Checks the path segments, that the agent is exposed, that the principal may touch the
    /// instance, and the agent's guard. Returns the key, or the guard's own response.
    func agentAddress(_ request: Request, _ context: Context) async throws
        -> (key: SessionKey, guardResponse: Response?)
    {
        let context = try PathParameters.decoding(["name", "id"], in: context)
        let name = context.parameters.get("name") ?? ""
        let id = context.parameters.get("id") ?? ""
        guard !name.trimmingCharacters(in: .whitespaces).isEmpty, !id.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw FlueHTTPError.invalidRequest("Agent URLs must have the shape /agents/<name>/<id> with non-empty segments.")
        }
        let key: SessionKey
        do {
            key = try engine.instanceKey(agent: name, id: id, exposedOnly: true)
        } catch .badAgentName {
            throw FlueHTTPError.invalidRequest(
                "Agent names start with a letter and contain only letters, digits, _ and - (at most 64 characters).")
        } catch .badInstanceId {
            throw FlueHTTPError.invalidRequest(
                "Instance ids are 1 to 256 characters: letters, digits and . _ ~ : @ + - (no slashes or spaces), "
                    + "and not . or .. alone.")
        } catch .unknownAgent {
            throw FlueHTTPError.agentNotFound(name, available: engine.exposedAgentNames)
        }
        // A principal that may not touch the instance gets the 404 a read of one that never
        // existed gets; other methods the same type, with details that fit them (they do not depend
        // on whether the instance exists either).
        guard try await allows(.agentInstance(agent: key.agent, id: key.instanceId)) else {
            if request.method == .get || request.method == .head {
                throw FlueHTTPError.streamNotFound(AgentAddress.streamPath(key))
            }
            throw FlueHTTPError(
                .notFound, type: "stream_not_found", message: "Agent instance not found.",
                details: "These credentials may not use this instance id.")
        }
        let guardResponse = try await agentGuards[name]?(request, context)
        return (key, guardResponse)
    }

    private func promptAgent(_ request: Request, _ context: Context) async throws -> Response {
        let waitForResult = try Self.waitParameter(request)
        let (key, guardResponse) = try await agentAddress(request, context)
        if let guardResponse { return guardResponse }
        let body = try await JSONBody.read(request, limit: server.configuration.agentRequestBodyLimit)
        let input = try AgentPromptBody.validate(body)
        let idempotencyKey = try Self.idempotencyKey(request)
        let replay = idempotencyKey.map { engine.idempotentSubmissionId(key, idempotencyKey: $0) }
        let receipt = try await admittingWithinLimits(replaying: replay, id: \.submissionId) {
            try await engine.submitPrompt(to: key, input: input, idempotencyKey: idempotencyKey)
        }
        let streamURL = Self.agentStreamURL(request, key, publicURL: server.configuration.publicURL)
        guard waitForResult else {
            var response = Self.json(
                .accepted,
                [
                    "streamUrl": .string(streamURL), "offset": .string(receipt.offset),
                    "submissionId": .string(receipt.submissionId),
                ])
            response.headers[.location] = streamURL
            response.headers[.streamNextOffset] = receipt.offset
            return response
        }
        let (outcome, offset) = try await engine.settlement(of: receipt, abandon: ClientConnection.current?.goneSignal())
        switch outcome {
        case .completed(let result):
            return Self.json(
                .ok,
                [
                    "result": result, "streamUrl": .string(streamURL), "offset": .string(offset.description),
                    "submissionId": .string(receipt.submissionId),
                ])
        case .failed(let error):
            // Failures that are not Flue errors (`error`) never leak their message.
            guard let type = error["type"]?.stringValue, type != "error" else {
                var failure = FlueHTTPError.internalError
                failure.underlying = "submission \(receipt.submissionId) failed: \(error.jsonString)"
                throw failure
            }
            throw FlueHTTPError.runtimeFailure(
                type: type, message: error["message"]?.stringValue ?? "the submission failed",
                details: error["details"]?.objectValue ?? [:])
        }
    }

    private func readAgent(_ request: Request, _ context: Context) async throws -> Response {
        let (key, guardResponse) = try await agentAddress(request, context)
        if let guardResponse { return guardResponse }
        let path = AgentAddress.streamPath(key)
        let reader = StreamReader(
            store: engine.stores.streams, path: path, notFound: .streamNotFound(path), configuration: server.configuration,
            shutdown: engine.shutdown, liveReads: server.liveReads)
        if request.method == .head { return try await reader.head() }
        return try await reader.get(request)
    }

    /// The instance's URL (prefix included, no query): where its events are read. Name and id
    /// are written in their canonical encoding, whatever encoding the request used.
    static func agentStreamURL(_ request: Request, _ key: SessionKey, publicURL: String?) -> String {
        PathParameters.mountURL(request, routeSegments: 3, publicURL: publicURL)
            + "/agents/\(PathParameters.encoded(key.agent))/\(PathParameters.encoded(key.instanceId))"
    }
}
