import FlueEngine
import FlueRuntime

/// Builds the OpenAPI 3.1 document served at `GET /openapi.json`: one path per exposed workflow
/// with its payload and result schemas, the run and agent routes, and every status each route
/// can answer. Kept true by a schemathesis run in CI (`ci/schemathesis.sh`).
enum OpenAPIDocument {
    /// `protected`: the routes are mounted with an `AccessPolicy`, so every operation requires a
    /// bearer credential and can answer `401` and `429`.
    static func make(engine: Engine, prefix: String, protected: Bool = false) -> JSONValue {
        var paths: [String: JSONValue] = [:]
        for name in engine.exposedWorkflowNames {
            guard let workflow = engine.workflow(named: name) else { continue }
            paths["/workflows/\(name)"] = workflowPath(name, workflow)
        }
        paths["/runs/{runId}"] = runPath()
        paths["/runs/{runId}/cancel"] = runCancelPath()
        if !engine.exposedAgentNames.isEmpty {
            paths["/agents/{name}/{id}"] = agentPath(engine)
            let parameters = agentParameters(engine)
            paths["/agents/{name}/{id}/abort"] = abortPath(parameters)
            paths["/agents/{name}/{id}/submissions"] = submissionListPath(parameters)
            paths["/agents/{name}/{id}/submissions/{submissionId}"] = submissionPath(parameters)
            paths["/agents/{name}/{id}/submissions/{submissionId}/cancel"] = submissionCancelPath(parameters)
            paths["/agents/{name}/{id}/approvals"] = approvalListPath(parameters)
            paths["/agents/{name}/{id}/approvals/{callId}"] = approvalDecisionPath(parameters)
        }
        paths["/openapi.json"] = [
            "get": [
                "operationId": "openAPIDocument", "tags": ["meta"],
                "responses": [
                    "200": [
                        "description": "This document.",
                        "content": ["application/json": ["schema": ["type": "object"]]],
                    ]
                ],
            ],
            "head": [
                "operationId": "openAPIDocumentHeaders", "tags": ["meta"],
                "responses": ["200": ["description": "The document's headers, no body."]],
            ],
        ]
        var document: [String: JSONValue] = [
            "openapi": "3.1.0",
            "info": [
                "title": "Flue API", "version": "0.1.0",
                "description": .string(
                    "Workflows, agent instances and their durable event streams (Durable Streams protocol). "
                        + "Path parameters are percent-decoded once before validation. With RouteNotFoundMiddleware "
                        + "(as FlueServer.serve installs it), any method a Flue path does not list answers 405 with Allow."),
            ],
            "paths": .object(paths),
            "components": ["schemas": components],
        ]
        if !prefix.isEmpty { document["servers"] = [["url": .string(prefix)]] }
        if protected {
            document["paths"] = .object(paths.mapValues(requiringCredentials))
            document["components"] = [
                "schemas": components,
                "securitySchemes": [
                    "bearer": [
                        "type": "http", "scheme": "bearer",
                        "description": "A static token (API_TOKENS) or a JWT (JWT_SECRET / JWT_JWKS_URL).",
                    ]
                ],
            ]
            document["security"] = [["bearer": []]]
        }
        return .object(document)
    }

    /// The path item with `401` (no or refused credentials, `WWW-Authenticate`) and `429`
    /// (`Retry-After`) on each operation.
    static func requiringCredentials(_ path: JSONValue) -> JSONValue {
        guard var item = path.objectValue else { return path }
        for (method, operation) in item {
            guard var fields = operation.objectValue, var responses = fields["responses"]?.objectValue else { continue }
            func response(_ description: String, header: String, type: String) -> JSONValue {
                var response: [String: JSONValue] = [
                    "description": .string(description), "headers": .object([header: ["schema": ["type": .string(type)]]]),
                ]
                if method != "head" { response["content"] = ["application/json": ["schema": ref("ErrorEnvelope")]] }
                return .object(response)
            }
            responses["401"] = response(
                "No credentials, or refused ones (error=\"invalid_token\" in WWW-Authenticate).",
                header: "WWW-Authenticate", type: "string")
            responses["429"] = response(
                "This principal is over a limit (meta.limit); retry after Retry-After seconds.", header: "Retry-After",
                type: "integer")
            fields["responses"] = .object(responses)
            item[method] = .object(fields)
        }
        return .object(item)
    }

    // MARK: workflows

    private static func workflowPath(_ name: String, _ workflow: Workflow) -> JSONValue {
        var responses = errorResponses([400, 404, 409, 413, 415, 500, 503])
        responses["202"] = [
            "description": "Run admitted; read its events at streamUrl.",
            "headers": streamHeaders(["Location", "Stream-Next-Offset"]),
            "content": ["application/json": ["schema": ref("RunReceipt")]],
            "links": [
                "CancelRun": ["operationId": "cancelRun", "parameters": ["runId": "$response.body#/runId"]],
                "ReadRun": ["operationId": "readRun", "parameters": ["runId": "$response.body#/runId"]],
            ],
        ]
        responses["200"] = [
            "description": "With ?wait=result: the run's result (a failed run answers with the error envelope).",
            "content": [
                "application/json": [
                    "schema": [
                        "type": "object",
                        "properties": [
                            "result": openSchema(workflow.resultSchema?.value ?? [:]),
                            "runId": ref("RunId"), "streamUrl": ["type": "string"], "offset": ref("Offset"),
                        ],
                        "required": ["result", "runId", "streamUrl", "offset"],
                    ]
                ]
            ],
        ]
        var operation: [String: JSONValue] = [
            "operationId": .string("invokeWorkflow_\(name)"),
            "tags": ["workflows"],
            "parameters": [waitParameter, idempotencyKeyParameter],
            "requestBody": [
                // No body is the payload {}: optional exactly when {} is a valid payload.
                "required": .bool(!(workflow.payloadSchema.value["required"]?.arrayValue ?? []).isEmpty),
                "description": "The workflow's payload; no body (or an empty one) is the payload {}. Unknown properties are ignored.",
                "content": ["application/json": ["schema": openSchema(workflow.payloadSchema.value)]],
            ],
            "responses": .object(responses),
        ]
        if let description = workflow.description { operation["summary"] = .string(description) }
        return ["post": .object(operation)]
    }

    // MARK: runs

    private static func runPath() -> JSONValue {
        let runParameter: JSONValue = [
            "name": "runId", "in": "path", "required": true, "description": "A run id as returned by POST /workflows/{name}.",
            "schema": ref("RunId"),
        ]
        var get = readOperation(id: "readRun", tag: "runs", pathParameters: [runParameter], recordView: true)
        get["description"] = .string(
            "Durable Streams read of the run's events. With `meta` (any value, even empty) the answer is the run "
                + "record instead; offset, live and tail are still validated (and otherwise ignored).")
        return ["get": .object(get), "head": headOperation(id: "readRunMetadata", tag: "runs", pathParameters: [runParameter])]
    }

    // MARK: agents

    /// `POST`/`GET`/`HEAD /agents/{name}/{id}`: one generic path for every exposed agent.
    private static func agentPath(_ engine: Engine) -> JSONValue {
        let parameters = agentParameters(engine)
        let image: JSONValue = [
            "type": "object",
            "properties": [
                "type": ["type": "string", "enum": ["image"]],
                "data": [
                    "type": "string", "minLength": 4, "maxLength": 14_680_064, "pattern": .string(AgentPromptBody.base64Pattern),
                    "description": "The image bytes, standard base64 (RFC 4648 §4) with padding.",
                ],
                "mimeType": ["type": "string", "enum": .array(AgentPromptBody.imageTypes.sorted().map(JSONValue.string))],
            ],
            "required": ["type", "data", "mimeType"],
        ]
        var postResponses = errorResponses([400, 404, 409, 413, 415, 500, 503])
        postResponses["202"] = [
            "description": "Prompt admitted as a durable submission; read its events at streamUrl after offset.",
            "headers": streamHeaders(["Location", "Stream-Next-Offset"]),
            "content": ["application/json": ["schema": ref("SubmissionReceipt")]],
            "links": submissionLinks,
        ]
        postResponses["200"] = [
            "description": "With ?wait=result: the settled answer. A failed submission answers with the error envelope.",
            "content": ["application/json": ["schema": ref("SubmissionAnswer")]],
        ]
        let post: JSONValue = [
            "operationId": "invokeAgent",
            "tags": ["agents"],
            "parameters": .array(parameters + [waitParameter, idempotencyKeyParameter]),
            "requestBody": [
                "required": true,
                "content": [
                    "application/json": [
                        "schema": [
                            "type": "object",
                            "description": "Unknown properties are ignored.",
                            "properties": [
                                "message": ["type": "string"],
                                "images": ["type": ["array", "null"], "items": image, "description": "null means no images."],
                                "budget": ref("Budget"),
                            ],
                            "required": ["message"],
                        ]
                    ]
                ],
            ],
            "responses": .object(postResponses),
        ]
        var get = readOperation(id: "readAgent", tag: "agents", pathParameters: parameters, recordView: false)
        get["description"] = "Durable Streams read of the instance's events; 404 stream_not_found before its first prompt."
        return ["post": post, "get": .object(get), "head": headOperation(id: "readAgentMetadata", tag: "agents", pathParameters: parameters)]
    }

    /// The `name` and `id` path parameters of every agent route.
    static func agentParameters(_ engine: Engine) -> [JSONValue] {
        [
            [
                "name": "name", "in": "path", "required": true,
                "description": "An exposed agent's name (letters, digits, _ and -; starts with a letter; at most 64).",
                "schema": [
                    "type": "string", "pattern": .string(DefinitionName.pattern),
                    "enum": .array(engine.exposedAgentNames.map(JSONValue.string)),
                ],
            ],
            [
                "name": "id", "in": "path", "required": true,
                "description": .string(
                    "The instance id: 1 to 256 characters from letters, digits and . _ ~ : @ + - "
                        + "(raw or percent-encoded), not . or .. alone. Each id is one conversation."),
                "schema": [
                    "type": "string", "pattern": "^[A-Za-z0-9._~:@+-]{1,256}$", "minLength": 1, "maxLength": 256,
                    "not": ["enum": [".", ".."]],
                ],
            ],
        ]
    }

    // MARK: stream reads

    private static func readOperation(id: String, tag: String, pathParameters: [JSONValue], recordView: Bool)
        -> [String: JSONValue]
    {
        let readParameters: [JSONValue] = [
            [
                "name": "offset", "in": "query",
                "description": .string(
                    "Read strictly after this position: -1 (start), now (tail), or an offset this stream returned. "
                        + "Required with live. An offset past the stream's tail was never issued and answers 400."),
                "schema": ref("RequestOffset"),
            ],
            [
                "name": "live", "in": "query", "description": "Absent: catch-up. Requires offset.",
                "schema": ["type": "string", "enum": ["long-poll", "sse"]],
            ],
            [
                "name": "tail", "in": "query",
                "description": "With offset=-1: at most the last N events. Validated on every read; no upper bound.",
                "schema": ["type": "string", "pattern": "^[1-9][0-9]*$"],
            ],
            [
                "name": "cursor", "in": "query", "description": "Long-poll and SSE: the last Stream-Cursor seen.",
                "schema": ["type": "string"],
            ],
        ]
        var parameters = pathParameters + readParameters
        var content: [String: JSONValue] = [
            "application/json": ["schema": ["type": "array", "items": ref("Event")]],
            "text/event-stream": [
                "schema": [
                    "type": "object",
                    "description": .string(
                        "One SSE event: data = a JSON array of events; control = a JSON object with "
                            + "streamNextOffset, streamCursor, upToDate?, streamClosed?."),
                    "properties": ["event": ["type": "string", "enum": ["data", "control"]], "data": ["type": "string"]],
                    "required": ["event", "data"],
                ]
            ],
        ]
        var description = "Catch-up or long-poll: a JSON array of events. SSE (live=sse): an event stream."
        if recordView {
            parameters.append([
                "name": "meta", "in": "query", "description": "Present (any value): answer the run record.",
                "schema": ["type": "string"], "allowEmptyValue": true,
            ])
            content["application/json"] = ["schema": ["oneOf": [["type": "array", "items": ref("Event")], ref("RunRecord")]]]
            description += " With meta: the run record."
        }
        var responses = errorResponses([400, 404, 500, 503])
        responses["503"] = [
            "description": .string(
                "Shutting down, the store is unavailable, or a live-read limit is reached (meta.limit live_reads or "
                    + "live_reads_per_stream, with Retry-After)."),
            "headers": ["Retry-After": ["schema": ["type": "string"], "description": "Seconds to wait before retrying."]],
            "content": ["application/json": ["schema": ref("ErrorEnvelope")]],
        ]
        responses["200"] = [
            "description": .string(description),
            "headers": streamHeaders(["Stream-Next-Offset", "Stream-Up-To-Date", "Stream-Closed", "Stream-Cursor", "ETag"]),
            "content": .object(content),
        ]
        responses["204"] = [
            "description": "Long-poll timed out, or the stream is closed and caught up.",
            "headers": streamHeaders(["Stream-Next-Offset", "Stream-Up-To-Date", "Stream-Closed", "Stream-Cursor"]),
        ]
        responses["304"] = ["description": "If-None-Match matched the ETag."]
        return [
            "operationId": .string(id), "tags": [.string(tag)], "parameters": .array(parameters),
            "responses": .object(responses),
        ]
    }

    private static func headOperation(id: String, tag: String, pathParameters: [JSONValue]) -> JSONValue {
        [
            "operationId": .string(id), "tags": [.string(tag)], "parameters": .array(pathParameters),
            "description": "Stream metadata headers, no body. Query parameters are ignored.",
            "responses": [
                "200": [
                    "description": "Stream metadata headers.",
                    "headers": streamHeaders(["Stream-Next-Offset", "Stream-Up-To-Date", "Stream-Closed", "ETag"]),
                ],
                "400": ["description": "Invalid path parameter (no body)."],
                "404": ["description": "Unknown stream (no body)."],
                "500": ["description": "Internal error (no body)."],
                "503": ["description": "The store is unavailable (no body)."],
            ],
        ]
    }

    // MARK: shared pieces

    static let waitParameter: JSONValue = [
        "name": "wait", "in": "query", "required": false, "description": "result: answer once the work is settled.",
        "schema": ["type": "string", "enum": ["result"]],
    ]

    static func ref(_ name: String) -> JSONValue { ["$ref": .string("#/components/schemas/\(name)")] }

    static func streamHeaders(_ names: [String]) -> JSONValue {
        .object(Dictionary(uniqueKeysWithValues: names.map { ($0, ["schema": ["type": "string"]] as JSONValue) }))
    }

    static func errorResponses(_ statuses: [Int]) -> [String: JSONValue] {
        var responses: [String: JSONValue] = [:]
        for status in statuses {
            responses[String(status)] = [
                "description": "Error envelope.",
                "content": ["application/json": ["schema": ref("ErrorEnvelope")]],
            ]
        }
        return responses
    }

    /// A derived schema as the HTTP side applies it: decoding ignores unknown properties, so
    /// `additionalProperties: false` (which the model-facing schema keeps) is dropped everywhere.
    static func openSchema(_ schema: JSONValue) -> JSONValue {
        switch schema {
        case .object(var object):
            if object["additionalProperties"] == false { object["additionalProperties"] = nil }
            return .object(object.mapValues(openSchema))
        case .array(let items):
            return .array(items.map(openSchema))
        default:
            return schema
        }
    }

    private static let components: JSONValue = .object((baseComponents.objectValue ?? [:]).merging(controlComponents) { first, _ in first })

    private static let baseComponents: JSONValue = [
        "RunId": ["type": "string", "pattern": "^[A-Za-z0-9._~:@+-]{1,256}$"],
        "Offset": [
            "type": "string", "pattern": "^0{16}_[0-9]{16}$",
            "description": "An issued offset: 16 zeros, _, and the number of events before the position (16 digits).",
        ],
        "RequestOffset": [
            "type": "string", "pattern": "^(-1|now|0{1,16}_[0-9]{1,16})$",
            "description": "-1 (start), now (tail), or an offset the stream returned.",
        ],
        "RunReceipt": [
            "type": "object",
            "properties": ["runId": ref("RunId"), "streamUrl": ["type": "string"], "offset": ref("Offset")],
            "required": ["runId", "streamUrl", "offset"],
        ],
        "SubmissionReceipt": [
            "type": "object",
            "properties": ["streamUrl": ["type": "string"], "offset": ref("Offset"), "submissionId": ["type": "string"]],
            "required": ["streamUrl", "offset", "submissionId"],
        ],
        "SubmissionAnswer": [
            "type": "object",
            "properties": [
                "result": [
                    "type": "object",
                    "properties": [
                        "text": ["type": "string"], "usage": ref("Usage"),
                        "model": [
                            "type": "object", "properties": ["provider": ["type": "string"], "id": ["type": "string"]],
                        ],
                    ],
                    "required": ["text", "usage", "model"],
                ],
                "streamUrl": ["type": "string"], "offset": ref("Offset"), "submissionId": ["type": "string"],
            ],
            "required": ["result", "streamUrl", "offset", "submissionId"],
        ],
        "Usage": [
            "type": "object",
            "properties": [
                "input": ["type": "integer"], "output": ["type": "integer"], "cacheRead": ["type": "integer"],
                "cacheWrite": ["type": "integer"], "totalTokens": ["type": "integer"],
                "cost": [
                    "type": "object",
                    "description": "US dollars, from the model catalog's prices (absent for unpriced models).",
                    "properties": [
                        "input": ["type": "number"], "output": ["type": "number"], "cacheRead": ["type": "number"],
                        "cacheWrite": ["type": "number"], "total": ["type": "number"],
                    ],
                ],
            ],
        ],
        "RunRecord": [
            "type": "object",
            "properties": [
                "runId": ref("RunId"), "workflowName": ["type": "string"],
                "status": ["type": "string", "enum": ["active", "completed", "errored"]],
                "startedAt": ["type": "string", "format": "date-time"],
                "endedAt": ["type": "string", "format": "date-time"], "durationMs": ["type": "integer"],
                "startedBy": [
                    "type": "string", "description": "The subject of the principal that started the run (with access control).",
                ],
                "isError": ["type": "boolean"], "payload": [:], "result": [:], "error": [:],
                "usage": ref("Usage"),
            ],
            "required": ["runId", "workflowName", "status", "startedAt"],
        ],
        "Event": [
            "type": "object",
            "properties": [
                "v": ["type": "integer"], "type": ["type": "string"], "eventIndex": ["type": "integer"],
                "timestamp": ["type": "string", "format": "date-time"],
            ],
            "required": ["v", "type", "eventIndex", "timestamp"],
        ],
        "ErrorEnvelope": [
            "type": "object",
            "properties": [
                "error": [
                    "type": "object",
                    "properties": [
                        "type": ["type": "string"], "message": ["type": "string"],
                        "details": ["type": "string"], "dev": ["type": "string"], "meta": ["type": "object"],
                    ],
                    "required": ["type", "message", "details"],
                ]
            ],
            "required": ["error"],
        ],
    ]
}
