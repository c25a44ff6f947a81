import FlueRuntime

/// Builds the OpenAPI 3.1 document served at `GET /openapi.json`: one path per exposed workflow
/// with its payload and result schemas, plus the run read routes.
enum OpenAPIDocument {
    static func make(host: FlueHost, prefix: String) -> JSONValue {
        var paths: [String: JSONValue] = [:]
        let errors = errorResponses([400, 404, 405, 413, 415, 500, 503])
        for name in host.exposedWorkflowNames {
            guard let workflow = host.workflow(named: name) else { continue }
            var responses = errors
            responses["202"] = [
                "description": "Run admitted; read its events at streamUrl.",
                "headers": [
                    "Location": ["schema": ["type": "string"]],
                    "Stream-Next-Offset": ["schema": ["type": "string"]],
                ],
                "content": ["application/json": ["schema": ["$ref": "#/components/schemas/RunReceipt"]]],
            ]
            responses["200"] = [
                "description": "With ?wait=result: the run's result.",
                "content": [
                    "application/json": [
                        "schema": [
                            "type": "object",
                            "properties": [
                                "result": workflow.resultSchema?.value ?? [:],
                                "runId": ["type": "string"], "streamUrl": ["type": "string"],
                                "offset": ["type": "string"],
                            ],
                            "required": ["result", "runId", "streamUrl", "offset"],
                        ]
                    ]
                ],
            ]
            var operation: [String: JSONValue] = [
                "operationId": .string("invokeWorkflow_\(name)"),
                "tags": ["workflows"],
                "parameters": [
                    [
                        "name": "wait", "in": "query", "required": false,
                        "schema": ["type": "string", "enum": ["result"]],
                    ]
                ],
                "requestBody": [
                    "required": true,
                    "content": ["application/json": ["schema": workflow.payloadSchema.value]],
                ],
                "responses": .object(responses),
            ]
            if let description = workflow.description { operation["summary"] = .string(description) }
            paths["/workflows/\(name)"] = ["post": .object(operation)]
        }
        let runParameter: JSONValue = ["name": "runId", "in": "path", "required": true, "schema": ["type": "string"]]
        var readResponses = errorResponses([400, 404, 405])
        readResponses["200"] = [
            "description": "Catch-up: a JSON array of events (or the run record with ?meta); SSE with live=sse.",
            "content": [
                "application/json": ["schema": ["type": "array", "items": ["$ref": "#/components/schemas/Event"]]],
                "text/event-stream": ["schema": ["type": "string"]],
            ],
        ]
        readResponses["204"] = ["description": "Long-poll timed out, or the stream is closed and caught up."]
        readResponses["304"] = ["description": "If-None-Match matched the ETag."]
        paths["/runs/{runId}"] = [
            "get": [
                "operationId": "readRun",
                "tags": ["runs"],
                "parameters": [
                    runParameter,
                    ["name": "offset", "in": "query", "schema": ["type": "string"]],
                    ["name": "live", "in": "query", "schema": ["type": "string", "enum": ["long-poll", "sse"]]],
                    ["name": "tail", "in": "query", "schema": ["type": "integer", "minimum": 1]],
                    ["name": "cursor", "in": "query", "schema": ["type": "string"]],
                    ["name": "meta", "in": "query", "schema": ["type": "string"]],
                ],
                "responses": .object(readResponses),
            ],
            "head": [
                "operationId": "readRunMetadata",
                "tags": ["runs"],
                "parameters": [runParameter],
                "responses": ["200": ["description": "Stream metadata headers."], "404": ["description": "Unknown run."]],
            ],
        ]
        if !host.exposedAgentNames.isEmpty { paths["/agents/{name}/{id}"] = agentPath(host, readResponses: readResponses) }
        var document: [String: JSONValue] = [
            "openapi": "3.1.0",
            "info": [
                "title": "Flue API", "version": "0.1.0",
                "description": "Workflows, agent instances and their durable event streams.",
            ],
            "paths": .object(paths),
            "components": [
                "schemas": [
                    "RunReceipt": [
                        "type": "object",
                        "properties": [
                            "runId": ["type": "string"], "streamUrl": ["type": "string"], "offset": ["type": "string"],
                        ],
                        "required": ["runId", "streamUrl", "offset"],
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
            ],
        ]
        if !prefix.isEmpty { document["servers"] = [["url": .string(prefix)]] }
        return .object(document)
    }

    /// `POST`/`GET`/`HEAD /agents/{name}/{id}`: one generic path for every exposed agent.
    private static func agentPath(_ host: FlueHost, readResponses: [String: JSONValue]) -> JSONValue {
        let parameters: JSONValue = [
            [
                "name": "name", "in": "path", "required": true,
                "schema": ["type": "string", "enum": .array(host.exposedAgentNames.map(JSONValue.string))],
            ],
            [
                "name": "id", "in": "path", "required": true,
                "schema": ["type": "string", "pattern": "^[A-Za-z0-9._~:@+-]{1,256}$"],
            ],
        ]
        let image: JSONValue = [
            "type": "object",
            "properties": [
                "type": ["type": "string", "enum": ["image"]], "data": ["type": "string", "maxLength": 14_680_064],
                "mimeType": ["type": "string"],
            ],
            "required": ["type", "data", "mimeType"],
        ]
        let receipt: JSONValue = [
            "streamUrl": ["type": "string"], "offset": ["type": "string"], "submissionId": ["type": "string"],
        ]
        var postResponses = errorResponses([400, 404, 405, 409, 413, 415, 500, 503])
        postResponses["202"] = [
            "description": "Prompt admitted as a durable submission; read its events at streamUrl after offset.",
            "content": ["application/json": ["schema": ["type": "object", "properties": receipt]]],
        ]
        var answered = receipt.objectValue ?? [:]
        answered["result"] = [
            "type": "object",
            "properties": ["text": ["type": "string"], "usage": ["type": "object"], "model": ["type": "object"]],
        ]
        postResponses["200"] = [
            "description": "With ?wait=result: the settled answer.",
            "content": ["application/json": ["schema": ["type": "object", "properties": .object(answered)]]],
        ]
        return [
            "post": [
                "operationId": "invokeAgent",
                "tags": ["agents"],
                "parameters": .array(
                    (parameters.arrayValue ?? []) + [
                        ["name": "wait", "in": "query", "required": false, "schema": ["type": "string", "enum": ["result"]]]
                    ]),
                "requestBody": [
                    "required": true,
                    "content": [
                        "application/json": [
                            "schema": [
                                "type": "object",
                                "properties": ["message": ["type": "string"], "images": ["type": "array", "items": image]],
                                "required": ["message"],
                            ]
                        ]
                    ],
                ],
                "responses": .object(postResponses),
            ],
            "get": [
                "operationId": "readAgent", "tags": ["agents"], "parameters": parameters,
                "responses": .object(readResponses),
            ],
            "head": [
                "operationId": "readAgentMetadata", "tags": ["agents"], "parameters": parameters,
                "responses": ["200": ["description": "Stream metadata headers."], "404": ["description": "No prompt yet."]],
            ],
        ]
    }

    private static func errorResponses(_ statuses: [Int]) -> [String: JSONValue] {
        var responses: [String: JSONValue] = [:]
        for status in statuses {
            responses[String(status)] = [
                "description": "Error envelope.",
                "content": ["application/json": ["schema": ["$ref": "#/components/schemas/ErrorEnvelope"]]],
            ]
        }
        return responses
    }
}
