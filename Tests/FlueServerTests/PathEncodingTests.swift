import FlueRuntime
import FluePersistence
@testable import FlueEngine
@testable import FlueServer
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import Testing

/// Issue 18: path parameters are percent-decoded once; URLs the server writes carry canonical
/// ids; undeclared methods on Flue's paths answer 405; the OpenAPI document states the rules.
@Suite struct PathEncodingTests {
    /// (raw id, the same id as `encodeURIComponent` sends it)
    static let ids: [(raw: String, encoded: String)] = [
        ("alice@example.com", "alice%40example.com"),
        ("a:b", "a%3Ab"),
        ("a+b", "a%2Bb"),
        ("x.y_z~w-v", "x.y_z~w-v"),
        ("tilde~%7E", "tilde~%7E"),  // an encoded unreserved character decodes too: tilde~~
    ]

    @Test(arguments: ids)
    func rawAndEncodedIdsReachTheSameConversation(raw: String, encoded: String) async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            let id = raw == "tilde~%7E" ? "tilde~~" : raw
            let rawPath = raw == "tilde~%7E" ? "tilde~~" : raw

            let first = try await f.post("/agents/assistant/\(rawPath)?wait=result", #"{"message":"one"}"#)
            #expect(first.status == 200, "\(raw): \(first.text)")
            #expect(first.json?["streamUrl"]?.stringValue == "http://127.0.0.1:\(f.port)/agents/assistant/\(id)")
            let second = try await f.post("/agents/assistant/\(encoded)?wait=result", #"{"message":"two"}"#)
            #expect(second.status == 200, "\(encoded): \(second.text)")
            #expect(second.json?["streamUrl"] == first.json?["streamUrl"], "one canonical URL whatever the encoding")
            // The second prompt saw the first: one conversation.
            let history = try #require(await f.model.requests().last?.body["messages"]?.arrayValue)
            #expect(history.count == 3, "\(encoded): \(history)")

            let viaRaw = try await f.get("/agents/assistant/\(rawPath)")
            let viaEncoded = try await f.get("/agents/assistant/\(encoded)")
            #expect(viaRaw.status == 200 && viaEncoded.status == 200)
            #expect(viaRaw.json == viaEncoded.json)
            #expect(viaRaw.json?.arrayValue?.allSatisfy { $0["instanceId"]?.stringValue == id } == true)
            #expect(try await f.request(.HEAD, "/agents/assistant/\(encoded)").status == 200)

            let accepted = try await f.post("/agents/assistant/\(encoded)", #"{"message":"three"}"#)
            #expect(accepted.status == 202)
            #expect(accepted.header("Location") == first.json?["streamUrl"]?.stringValue)
            _ = try await f.settled(try #require(accepted.json?["submissionId"]?.stringValue))
        }
    }

    @Test func encodingIsDecodedExactlyOnceAndMalformedEscapesAreRejected() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            // %2540 is "%40" after one decoding: not a valid id character.
            let twice = try await f.post("/agents/assistant/alice%2540example.com", #"{"message":"hi"}"#)
            #expect(twice.status == 400)
            #expect(twice.errorType == "invalid_request")
            // An encoded slash stays inside the segment and then fails validation.
            let slash = try await f.get("/agents/assistant/a%2Fb")
            #expect(slash.status == 400)
            // Malformed escapes (sent raw: HTTP client libraries re-encode them).
            for malformed in ["a%zz", "a%4", "a%C3"] {
                let reply = try await f.raw("GET /agents/assistant/\(malformed) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                #expect(reply.hasPrefix("HTTP/1.1 400"), "\(malformed): \(reply)")
                #expect(reply.contains("malformed percent-encoding"), "\(malformed): \(reply)")
            }
            // Dot-segment ids would give URLs that clients normalize away.
            for dots in ["%2E", "%2E%2E", ".%2E"] {
                let reply = try await f.post("/agents/assistant/\(dots)", #"{"message":"hi"}"#)
                #expect(reply.status == 400, "\(dots)")
                #expect(reply.json?["error"]?["details"]?.stringValue?.contains("not . or ..") == true)
            }
            let rawDots = try await f.raw("GET /agents/assistant/.. HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(rawDots.hasPrefix("HTTP/1.1 400"), "\(rawDots)")
            // Agent names and run ids are decoded too.
            let name = try await f.post("/agents/%61ssistant/u1?wait=result", #"{"message":"hi"}"#)
            #expect(name.status == 200, "\(name.text)")
            let runId = try await f.startRun("logs", #"{"count":1}"#)
            _ = try await f.readToEnd(runId)
            let encodedRun = runId.replacingOccurrences(of: "_", with: "%5F")
            #expect(try await f.get("/runs/\(encodedRun)?meta").json?["runId"]?.stringValue == runId)
            let workflow = try await f.post("/workflows/%6Cogs?wait=result", #"{"count":1}"#)
            #expect(workflow.status == 200)
        }
    }

    @Test func routeGuardsSeeDecodedParametersAndRunIdsAreCheckedBeforeTheStore() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            let token = [("x-token", "secret")]
            for id in ["admin", "%61dmin", "%61%64%6D%69%6E"] {
                #expect(try await f.get("/agents/guarded-agent/\(id)", headers: token).status == 403, "\(id)")
                #expect(try await f.post("/agents/guarded-agent/\(id)", #"{"message":"hi"}"#, headers: token).status == 403)
            }
            // A NUL (or any character a run id never has) is an unknown run, not a store error.
            let runId = try await f.startRun("logs", #"{"count":1}"#)
            _ = try await f.readToEnd(runId)
            for suffix in ["%00", "%00junk", "%0A", "%20"] {
                let reply = try await f.get("/runs/\(runId)\(suffix)?meta")
                #expect(reply.status == 404, "\(suffix): \(reply.text)")
                #expect(reply.errorType == "run_not_found")
            }
        }
    }

    @Test func streamURLsKeepTheMountPrefixWhateverTheNames() throws {
        func request(_ path: String, forwarded: String? = nil) -> Request {
            var head = HTTPRequest(method: .post, scheme: "http", authority: "h:1", path: path)
            if let forwarded { head.headerFields[HTTPField.Name("X-Forwarded-Proto")!] = forwarded }
            return Request(head: head, body: RequestBody(buffer: ByteBuffer()))
        }
        typealias Routes = FlueRoutes<BasicRequestContext>
        let key = SessionKey(agent: "agents", instanceId: "a@b")
        #expect(Routes.agentStreamURL(request("/api/agents/agents/a%40b"), key, publicURL: nil) == "http://h:1/api/agents/agents/a@b")
        #expect(Routes.agentStreamURL(request("/agents/agents/a@b"), key, publicURL: nil) == "http://h:1/agents/agents/a@b")
        #expect(Routes.streamURL(request("/v1/workflows/workflows"), runId: "run_1", publicURL: nil) == "http://h:1/v1/runs/run_1")
        #expect(Routes.streamURL(request("/workflows/x"), runId: "r 1", publicURL: nil) == "http://h:1/runs/r%201")
        // Behind a TLS-terminating balancer the URLs say https; a configured public origin wins over Host.
        #expect(Routes.streamURL(request("/workflows/x", forwarded: "https"), runId: "run_1", publicURL: nil) == "https://h:1/runs/run_1")
        #expect(Routes.streamURL(request("/workflows/x", forwarded: "HTTPS, http"), runId: "run_1", publicURL: nil) == "https://h:1/runs/run_1")
        #expect(Routes.streamURL(request("/workflows/x", forwarded: "gopher"), runId: "run_1", publicURL: nil) == "http://h:1/runs/run_1")
        #expect(
            Routes.agentStreamURL(request("/api/agents/agents/a@b"), key, publicURL: "https://api.example.com")
                == "https://api.example.com/api/agents/agents/a@b")
    }

    @Test func undeclaredMethodsOnFluePathsAnswer405WithAllow() async throws {
        let f = try await ServerFixture.start(prefix: "/api")
        try await f.scoped {
            let cases: [(HTTPMethod, String, String)] = [
                (.TRACE, "/workflows/translate", "POST"),
                (.TRACE, "/runs/run_x", "GET, HEAD"),
                (.TRACE, "/agents/assistant/u1", "GET, HEAD, POST"),
                (.POST, "/openapi.json", "GET, HEAD"),
            ]
            for (method, path, allow) in cases {
                let reply = try await f.request(method, path)
                #expect(reply.status == 405, "\(method) \(path)")
                #expect(reply.header("Allow") == allow, "\(method) \(path)")
                #expect(reply.errorType == "method_not_allowed")
            }
            // Paths that are not Flue's still answer 404.
            let unknown = try await f.request(.TRACE, "/workflows/translate/extra")
            #expect(unknown.status == 404)
            #expect(unknown.errorType == "route_not_found")
            // The user's own route under the prefix is untouched.
            #expect(try await f.get("/hello").status == 200)
        }
    }

    @Test func metaValidatesTheReadParametersItIgnores() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            let runId = try await f.startRun("logs", #"{"count":1}"#)
            _ = try await f.readToEnd(runId)
            #expect(try await f.get("/runs/\(runId)?meta").json?["status"] == "completed")
            #expect(try await f.get("/runs/\(runId)?meta&offset=-1&tail=3&live=sse").json?["status"] == "completed")
            for garbage in ["live=websocket", "tail=0", "offset=banana", "live=sse"] {
                let reply = try await f.get("/runs/\(runId)?meta&\(garbage)")
                #expect(reply.status == 400, "\(garbage)")
                #expect(reply.errorType == "invalid_request")
            }
        }
    }

    @Test func theOpenAPIDocumentStatesPatternsStatusesAndTheRecordView() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            let document = try #require(try await f.get("/openapi.json").json)
            let agent = try #require(document["paths"]?["/agents/{name}/{id}"])
            let id = try #require(agent["get"]?["parameters"]?.arrayValue?.first { $0["name"] == "id" })
            #expect(id["schema"]?["pattern"] == "^[A-Za-z0-9._~:@+-]{1,256}$")
            #expect(id["schema"]?["maxLength"] == 256)
            #expect(agent["head"]?["responses"]?["400"] != nil)
            let images = agent["post"]?["requestBody"]?["content"]?["application/json"]?["schema"]?["properties"]?["images"]
            #expect(images?["type"] == ["array", "null"])
            let run = try #require(document["paths"]?["/runs/{runId}"]?["get"])
            let record = run["responses"]?["200"]?["content"]?["application/json"]?["schema"]?["oneOf"]?.arrayValue
            #expect(record?.contains(["$ref": "#/components/schemas/RunRecord"]) == true)
            let offset = run["parameters"]?.arrayValue?.first { $0["name"] == "offset" }
            #expect(offset?["description"]?.stringValue?.contains("Required with live") == true)
            for status in ["200", "204", "304", "400", "404", "500", "503"] {
                #expect(run["responses"]?[status] != nil, "GET /runs/{runId} documents \(status)")
            }
            let translate = try #require(document["paths"]?["/workflows/translate"]?["post"])
            let payload = translate["requestBody"]?["content"]?["application/json"]?["schema"]
            #expect(payload?["additionalProperties"] == nil, "unknown properties are ignored, as documented")
            #expect(translate["requestBody"]?["required"] == true)
        }
    }
}
