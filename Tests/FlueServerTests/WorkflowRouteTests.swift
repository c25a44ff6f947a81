import FlueRuntime
@testable import FlueEngine
import FlueServer
import FlueTestSupport
import Foundation
import Testing

@Suite struct WorkflowRouteTests {
    @Test func admitsARunWithReceiptHeadersAndStreamsItToRunEnd() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            await f.model.enqueue(.finish(["translation": "Bonjour", "confidence": "high"]))

            let reply = try await f.post("/workflows/translate", #"{"text":"Hello","language":"French"}"#)

            #expect(reply.status == 202)
            #expect(reply.header("content-type") == "application/json")
            let json = try #require(reply.json)
            let runId = try #require(json["runId"]?.stringValue)
            #expect(runId.hasPrefix("run_"))
            #expect(json["offset"] == "0000000000000000_0000000000000000")
            #expect(json["streamUrl"]?.stringValue == "http://127.0.0.1:\(f.port)/runs/\(runId)")
            #expect(reply.header("Location") == json["streamUrl"]?.stringValue)
            #expect(reply.header("Stream-Next-Offset") == "0000000000000000_0000000000000000")

            let events = try await f.readToEnd(runId)
            let types = events.compactMap { $0["type"]?.stringValue }
            #expect(types.first == "run_start")
            #expect(types.last == "run_end")
            #expect(types.contains("tool_start"))
            #expect(events.map { $0["eventIndex"]?.intValue } == Array(0..<events.count).map(Optional.some))
            #expect(events.allSatisfy { $0["runId"]?.stringValue == runId && $0["v"] == 1 })
            #expect(events.last?["result"] == ["translation": "Bonjour", "confidence": "high"])

            let meta = try await f.get("/runs/\(runId)?meta")
            #expect(meta.status == 200)
            #expect(meta.header("Stream-Next-Offset") == nil)
            #expect(meta.json?["status"] == "completed")
            #expect(meta.json?["workflowName"] == "translate")
            #expect(meta.json?["payload"] == ["text": "Hello", "language": "French"])
            #expect(meta.json?["result"] == ["translation": "Bonjour", "confidence": "high"])
            #expect(meta.json?["durationMs"]?.intValue != nil)
            #expect(meta.json?["endedAt"]?.stringValue != nil)
        }
    }

    @Test func waitForResultAnswersWithTheResult() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            await f.model.enqueue(.finish(["translation": "Hallo", "confidence": "medium"]))

            let reply = try await f.post("/workflows/translate?wait=result", #"{"text":"Hello","language":"German"}"#)

            #expect(reply.status == 200)
            #expect(reply.json?["result"] == ["translation": "Hallo", "confidence": "medium"])
            #expect(reply.json?["runId"]?.stringValue?.hasPrefix("run_") == true)
            #expect(reply.json?["offset"] == "0000000000000000_0000000000000000")
            #expect(reply.header("Location") == nil)
        }
    }

    @Test func failedRunsUnderWaitAnswerWithTheEnvelopeAndNeverLeakInternals() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {

            let plain = try await f.post("/workflows/fails?wait=result")
            #expect(plain.status == 500)
            #expect(plain.errorType == "internal_error")
            #expect(plain.json?["error"]?["message"] == "An internal error occurred.")
            #expect(!plain.text.contains("TestFailure"))
            #expect(plain.header("X-Content-Type-Options") == "nosniff")

            let typed = try await f.post("/workflows/fails-typed?wait=result")
            #expect(typed.status == 500)
            #expect(typed.errorType == "result_unavailable")

            let runId = try await f.startRun("fails")
            let events = try await f.readToEnd(runId)
            #expect(events.last?["type"] == "run_end")
            #expect(events.last?["isError"] == true)
            let meta = try await f.get("/runs/\(runId)?meta")
            #expect(meta.json?["status"] == "errored")
            #expect(meta.json?["isError"] == true)
        }
    }

    @Test func badRequestsGetTheirDocumentedErrors() async throws {
        let f = try await ServerFixture.start { $0.requestBodyLimit = 1024 }
        try await f.scoped {

            let wait = try await f.post("/workflows/translate?wait=soon", #"{"text":"a","language":"b"}"#)
            #expect(wait.status == 400)
            #expect(wait.errorType == "invalid_request")

            let media = try await f.request(.POST, "/workflows/translate", body: "text=a", contentType: "text/plain")
            #expect(media.status == 415)
            #expect(media.errorType == "unsupported_media_type")
            #expect(media.json?["error"]?["details"]?.stringValue?.contains("text/plain") == true)

            let json = try await f.post("/workflows/translate", "{not json")
            #expect(json.status == 400)
            #expect(json.errorType == "invalid_json")
            #expect(json.json?["error"]?["details"]?.stringValue?.hasPrefix("The JSON parser reported:") == true)

            let big = try await f.post("/workflows/translate", #"{"text":""# + String(repeating: "x", count: 2000) + #"","language":"fr"}"#)
            #expect(big.status == 413)
            #expect(big.errorType == "payload_too_large")

            let mismatch = try await f.post("/workflows/translate", #"{"text":5,"language":"fr"}"#)
            #expect(mismatch.status == 400)
            #expect(mismatch.errorType == "invalid_request")
            #expect(mismatch.json?["error"]?["details"]?.stringValue?.contains("payload.text") == true)
            #expect(mismatch.json?["error"]?["meta"]?["issues"]?.arrayValue?.first?["path"] == "text")

            let empty = try await f.request(.POST, "/workflows/translate", body: nil)
            #expect(empty.status == 400)
            #expect(empty.json?["error"]?["details"]?.stringValue?.contains("missing required property") == true)

            let unknown = try await f.post("/workflows/nope")
            #expect(unknown.status == 404)
            #expect(unknown.errorType == "workflow_not_found")
            #expect(unknown.json?["error"]?["dev"] == nil)

            let hidden = try await f.post("/workflows/nightly")
            #expect(hidden.status == 404)
            #expect(hidden.errorType == "workflow_not_found")

            let method = try await f.get("/workflows/translate")
            #expect(method.status == 405)
            #expect(method.header("Allow") == "POST")
            #expect(method.errorType == "method_not_allowed")

            let runMethod = try await f.request(.DELETE, "/runs/run_x")
            #expect(runMethod.status == 405)
            #expect(runMethod.header("Allow") == "GET, HEAD")

            let noRoute = try await f.get("/nowhere")
            #expect(noRoute.status == 404)
            #expect(noRoute.errorType == "route_not_found")

            let noRun = try await f.get("/runs/run_missing")
            #expect(noRun.status == 404)
            #expect(noRun.errorType == "run_not_found")
            let noRunMeta = try await f.get("/runs/run_missing?meta")
            #expect(noRunMeta.errorType == "run_not_found")
            #expect(await f.model.requests().isEmpty)
        }
    }

    @Test func developmentModeAddsGuidance() async throws {
        let f = try await ServerFixture.start { $0.developmentMode = true }
        try await f.scoped {
            let unknown = try await f.post("/workflows/nope")
            #expect(unknown.json?["error"]?["dev"]?.stringValue?.contains("translate") == true)
        }
    }

    @Test func internalWorkflowsRunFromCodeAndTheirRunsAreReadable() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            let nightly = try #require(f.engine.workflow(named: "nightly"))
            let receipt = try await f.engine.startRun(nightly, payload: try nightly.validatePayload([:]))
            guard case .success(let result) = await receipt.completion.value else {
                Issue.record("nightly failed")
                return
            }
            #expect(result == "internal result")
            let events = try await f.readToEnd(receipt.runId)
            #expect(events.last?["result"] == "internal result")
        }
    }

    @Test func guardsRunBeforeAdmissionAndHideRunsLikeUnknownOnes() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {

            let refused = try await f.post("/workflows/guarded")
            #expect(refused.status == 401)

            let token = [("x-token", "secret")]
            let runId = try await f.startRun("guarded", headers: token)
            let events = try await f.readToEnd(runId, headers: token)
            #expect(events.last?["result"] == "secret result")

            let hidden = try await f.get("/runs/\(runId)")
            let unknown = try await f.get("/runs/run_doesnotexist")
            #expect(hidden.status == 404)
            #expect(hidden.errorType == unknown.errorType)
            #expect(hidden.json?["error"]?["details"] == unknown.json?["error"]?["details"])
            let hiddenMeta = try await f.get("/runs/\(runId)?meta")
            #expect(hiddenMeta.status == 404)
            #expect(hiddenMeta.errorType == "run_not_found")
        }
    }

    @Test func mountsBeneathAPrefixBesideUserRoutes() async throws {
        let f = try await ServerFixture.start(prefix: "/api")
        try await f.scoped {

            let user = try await f.get("/hello")
            #expect(user.text == "user route")
            let reply = try await f.post("/workflows/logs", #"{"count":2}"#)
            #expect(reply.status == 202)
            let runId = try #require(reply.json?["runId"]?.stringValue)
            #expect(reply.json?["streamUrl"]?.stringValue == "http://127.0.0.1:\(f.port)/api/runs/\(runId)")
            let events = try await f.readToEnd(runId)
            #expect(events.last?["result"] == 2)

            let openapi = try await f.get("/openapi.json")
            #expect(openapi.status == 200)
            let document = try #require(openapi.json)
            #expect(document["openapi"] == "3.1.0")
            #expect(document["servers"]?.arrayValue?.first?["url"] == "/api")
            let translate = document["paths"]?["/workflows/translate"]?["post"]
            let payloadSchema = translate?["requestBody"]?["content"]?["application/json"]?["schema"]
            #expect(payloadSchema?["required"]?.arrayValue?.count == 2)
            #expect(payloadSchema?["properties"]?["language"] == ["type": "string"])
            let resultSchema = translate?["responses"]?["200"]?["content"]?["application/json"]?["schema"]?["properties"]?["result"]
            #expect(resultSchema?["properties"]?["confidence"]?["enum"] == ["low", "medium", "high"])
            #expect(document["paths"]?["/workflows/nightly"] == nil)
            #expect(document["paths"]?["/runs/{runId}"]?["get"] != nil)
            let agents = document["paths"]?["/agents/{name}/{id}"]
            #expect(agents?["post"]?["operationId"] == "invokeAgent")
            let names = agents?["post"]?["parameters"]?.arrayValue?.first?["schema"]?["enum"]
            #expect(names == ["assistant", "guarded-agent"], "exposed agents only")
            #expect(agents?["get"] != nil && agents?["head"] != nil)
            // The agent routes are mounted beneath the prefix too.
            #expect(try await f.post("/agents/assistant/p1?wait=result", #"{"message":"hi"}"#).status == 200)
        }
    }
}
