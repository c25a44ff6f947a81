import FlueEngine
import FlueRuntime

/// The control routes in the OpenAPI document: cancel, abort, submissions by id and listed.
extension OpenAPIDocument {
    static let idempotencyKeyParameter: JSONValue = [
        "name": "Idempotency-Key", "in": "header", "required": false,
        "description": .string(
            "Makes the POST safe to retry: the same key with the same body answers the original receipt (nothing new "
                + "is started); with a different body, 409 conflict. Scoped per agent instance or workflow; kept as long "
                + "as the submission or run record."),
        "schema": ["type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]{1,255}$"],
    ]

    /// Links from a submission receipt to the routes that take its id (OpenAPI 3.1 §4.8.20).
    static let submissionLinks: JSONValue = [
        "ReadSubmission": [
            "operationId": "readSubmission",
            "parameters": [
                "name": "$request.path.name", "id": "$request.path.id", "submissionId": "$response.body#/submissionId",
            ],
        ],
        "CancelSubmission": [
            "operationId": "cancelSubmission",
            "parameters": [
                "name": "$request.path.name", "id": "$request.path.id", "submissionId": "$response.body#/submissionId",
            ],
        ],
        "ListApprovals": [
            "operationId": "listApprovals", "parameters": ["name": "$request.path.name", "id": "$request.path.id"],
        ],
    ]

    static func runCancelPath() -> JSONValue {
        var responses = errorResponses([404, 409, 503])
        responses["200"] = [
            "description": "The run ended (errored with type aborted, or it finished first).",
            "content": ["application/json": ["schema": ref("RunRecord")]],
        ]
        responses["202"] = [
            "description": "Cancel requested; the run had not ended within 10 seconds.",
            "content": ["application/json": ["schema": ref("RunRecord")]],
        ]
        responses["409"] = [
            "description": "already_settled: the run had ended; error.meta is its record.",
            "content": ["application/json": ["schema": ref("ErrorEnvelope")]],
        ]
        return [
            "post": [
                "operationId": "cancelRun", "tags": ["runs"],
                "description": "Cancels an active run, whichever replica runs it; it ends errored with type aborted.",
                "parameters": [
                    [
                        "name": "runId", "in": "path", "required": true, "description": "A run id.",
                        "schema": ref("RunId"),
                    ]
                ],
                "responses": .object(responses),
            ]
        ]
    }

    static func abortPath(_ parameters: [JSONValue]) -> JSONValue {
        var responses = errorResponses([400, 404, 503])
        responses["200"] = [
            "description": .string(
                "Every queued submission is aborted and the running one stopped; each as it is after up to 10 seconds "
                    + "(oldest first; empty when nothing was queued or running)."),
            "content": [
                "application/json": [
                    "schema": [
                        "type": "object", "properties": ["submissions": ["type": "array", "items": ref("Submission")]],
                        "required": ["submissions"],
                    ]
                ]
            ],
        ]
        return [
            "post": [
                "operationId": "abortAgentInstance", "tags": ["agents"], "parameters": .array(parameters),
                "responses": .object(responses),
            ]
        ]
    }

    static func submissionListPath(_ parameters: [JSONValue]) -> JSONValue {
        var responses = errorResponses([400, 404, 503])
        responses["200"] = [
            "description": "The instance's submissions, newest first.",
            "content": ["application/json": ["schema": ref("SubmissionPage")]],
        ]
        let query: [JSONValue] = [
            [
                "name": "limit", "in": "query", "required": false, "description": "Page size (default 50).",
                "schema": ["type": "integer", "minimum": 1, "maximum": 1000],
            ],
            [
                "name": "cursor", "in": "query", "required": false,
                "description": "nextCursor of the previous page.", "schema": ["type": "string", "pattern": "^s[0-9]{1,18}$"],
            ],
        ]
        let get: [String: JSONValue] = [
            "operationId": "listSubmissions", "tags": ["agents"], "parameters": .array(parameters + query),
            "responses": .object(responses),
        ]
        return ["get": .object(get), "head": headOnly(get, id: "listSubmissionsHeaders", statuses: [400, 404, 503])]
    }

    /// The `HEAD` twin of a `GET` operation: the same parameters, bodiless answers.
    static func headOnly(_ get: [String: JSONValue], id: String, statuses: [Int]) -> JSONValue {
        var head = get
        head["operationId"] = .string(id)
        var responses: [String: JSONValue] = ["200": ["description": "The headers of the GET answer, no body."]]
        for status in statuses { responses[String(status)] = ["description": "The headers of the GET error, no body."] }
        head["responses"] = .object(responses)
        return .object(head)
    }

    static let submissionIdParameter: JSONValue = [
        "name": "submissionId", "in": "path", "required": true,
        "description": "A submission id as returned by POST /agents/{name}/{id}.",
        "schema": ["type": "string", "pattern": "^[A-Za-z0-9._~:@+-]{1,256}$"],
    ]

    static func submissionPath(_ parameters: [JSONValue]) -> JSONValue {
        var responses = errorResponses([400, 404, 499, 503])
        responses["200"] = [
            "description": "The submission; with ?wait=result, once it settled.",
            "content": ["application/json": ["schema": ref("Submission")]],
        ]
        let get: [String: JSONValue] = [
            "operationId": "readSubmission", "tags": ["agents"],
            "parameters": .array(parameters + [submissionIdParameter, waitParameter]),
            "responses": .object(responses),
        ]
        return ["get": .object(get), "head": headOnly(get, id: "readSubmissionHeaders", statuses: [400, 404, 499, 503])]
    }

    static func submissionCancelPath(_ parameters: [JSONValue]) -> JSONValue {
        var responses = errorResponses([400, 404, 503])
        responses["200"] = [
            "description": "The submission is settled: aborted (or it completed first).",
            "content": ["application/json": ["schema": ref("Submission")]],
        ]
        responses["202"] = [
            "description": "Cancel requested; the running submission had not settled within 10 seconds.",
            "content": ["application/json": ["schema": ref("Submission")]],
        ]
        responses["409"] = [
            "description": "already_settled: the submission had settled; error.meta is the submission.",
            "content": ["application/json": ["schema": ref("ErrorEnvelope")]],
        ]
        return [
            "post": [
                "operationId": "cancelSubmission", "tags": ["agents"],
                "description": "Cancels one submission, queued or running, on any replica; the rest of the queue is untouched.",
                "parameters": .array(parameters + [submissionIdParameter]),
                "responses": .object(responses),
            ]
        ]
    }

    static func approvalListPath(_ parameters: [JSONValue]) -> JSONValue {
        var responses = errorResponses([400, 404, 503])
        responses["200"] = [
            "links": [
                "DecideApproval": [
                    "operationId": "decideApproval",
                    "parameters": [
                        "name": "$request.path.name", "id": "$request.path.id", "callId": "$response.body#/approvals/0/callId",
                    ],
                ]
            ],
            "description": "The instance's tool calls waiting for a decision, oldest first.",
            "content": [
                "application/json": [
                    "schema": [
                        "type": "object", "properties": ["approvals": ["type": "array", "items": ref("Approval")]],
                        "required": ["approvals"],
                    ]
                ]
            ],
        ]
        let get: [String: JSONValue] = [
            "operationId": "listApprovals", "tags": ["agents"], "parameters": .array(parameters),
            "responses": .object(responses),
        ]
        return ["get": .object(get), "head": headOnly(get, id: "listApprovalsHeaders", statuses: [400, 404, 503])]
    }

    static func approvalDecisionPath(_ parameters: [JSONValue]) -> JSONValue {
        var responses = errorResponses([400, 404, 413, 415, 503])
        responses["200"] = [
            "description": "The decision is recorded; the submission resumes once none of its calls waits.",
            "content": ["application/json": ["schema": ref("Approval")]],
        ]
        responses["409"] = [
            "description": "already_decided: the call was decided before (or expired); error.meta is the call.",
            "content": ["application/json": ["schema": ref("ErrorEnvelope")]],
        ]
        let callId: JSONValue = [
            "name": "callId", "in": "path", "required": true, "description": "The tool call id from approval_requested.",
            "schema": ["type": "string", "pattern": "^[A-Za-z0-9._~:@+-]{1,256}$"],
        ]
        return [
            "post": [
                "operationId": "decideApproval", "tags": ["agents"],
                "description": "Approve or deny a tool call waiting for a human, on any replica.",
                "parameters": .array(parameters + [callId]),
                "requestBody": [
                    "required": true,
                    "content": [
                        "application/json": [
                            "schema": [
                                "type": "object",
                                "properties": [
                                    "decision": ["type": "string", "enum": ["approve", "deny"]],
                                    "reason": ["type": ["string", "null"], "maxLength": 1024],
                                ],
                                "required": ["decision"],
                            ]
                        ]
                    ],
                ],
                "responses": .object(responses),
            ]
        ]
    }

    static let controlComponents: [String: JSONValue] = [
        "Approval": [
            "type": "object",
            "properties": [
                "callId": ["type": "string"], "submissionId": ["type": "string"], "tool": ["type": "string"],
                "arguments": [:], "requestedAt": ["type": "string", "format": "date-time"],
                "expiresAt": ["type": "string", "format": "date-time"],
                "decision": ["type": "string", "enum": ["approve", "deny"]], "reason": ["type": "string"],
                "decidedAt": ["type": "string", "format": "date-time"],
            ],
            "required": ["callId", "submissionId", "tool", "arguments", "requestedAt", "expiresAt"],
        ],
        "Budget": [
            "type": ["object", "null"],
            "description":
                "Limits for this submission (tightening the agent's): model turns, tokens (input and output) and cost in US dollars.",
            "properties": [
                "maxTurns": ["type": ["integer", "null"], "minimum": 1, "maximum": .int(AgentPromptBody.maxBudgetLimit)],
                "maxTokens": ["type": ["integer", "null"], "minimum": 1, "maximum": .int(AgentPromptBody.maxBudgetLimit)],
                "maxCost": [
                    "type": ["number", "null"], "exclusiveMinimum": 0, "maximum": .int(AgentPromptBody.maxBudgetLimit),
                ],
            ],
            "additionalProperties": false,
        ],
        "Submission": [
            "type": "object",
            "properties": [
                "submissionId": ["type": "string"], "kind": ["type": "string", "enum": ["direct", "dispatch"]],
                "status": [
                    "type": "string",
                    "enum": ["queued", "running", "awaiting_approval", "completed", "failed", "aborted"],
                ],
                "admittedAt": ["type": "string", "format": "date-time"],
                "startedAt": ["type": "string", "format": "date-time"],
                "settledAt": ["type": "string", "format": "date-time"],
                "cancelRequestedAt": ["type": "string", "format": "date-time"],
                "attempts": ["type": "integer", "minimum": 0], "result": [:],
                "error": [
                    "type": "object",
                    "properties": ["type": ["type": "string"], "message": ["type": "string"], "details": ["type": "object"]],
                ],
                "offset": ["type": "string"],
            ],
            "required": ["submissionId", "kind", "status", "admittedAt", "attempts", "offset"],
        ],
        "SubmissionPage": [
            "type": "object",
            "properties": [
                "submissions": ["type": "array", "items": ["$ref": "#/components/schemas/Submission"]],
                "nextCursor": ["type": "string"],
            ],
            "required": ["submissions"],
        ],
    ]
}
