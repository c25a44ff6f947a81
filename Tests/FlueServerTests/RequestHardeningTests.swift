import AsyncHTTPClient
import FlueRuntime
import Foundation
import NIOCore
import OpenAPIRuntime
import Testing

/// Issue 10, items 8 and 9: Durable Streams control frames and body errors in the client's terms.
@Suite struct RequestHardeningTests {
    func postBytes(_ f: ServerFixture, _ path: String, _ bytes: [UInt8]) async throws -> ServerFixture.Reply {
        var request = HTTPClientRequest(url: f.baseURL + path)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: bytes))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return ServerFixture.Reply(status: Int(response.status.code), headers: response.headers, body: Data(body.readableBytesView))
    }

    @Test func bodiesThatAreNotJSONAreDescribedInTheClientsTerms() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            // {"message":"<0xFF>"}
            let invalidUTF8: [UInt8] = Array(#"{"message":""#.utf8) + [0xFF] + Array(#""}"#.utf8)
            for path in ["/workflows/translate", "/agents/assistant/u"] {
                let utf8 = try await postBytes(f, path, invalidUTF8)
                #expect(utf8.status == 400)
                #expect(utf8.errorType == "invalid_json")
                let details = try #require(utf8.json?["error"]?["details"]?.stringValue)
                #expect(details.contains("not valid UTF-8"), "\(details)")
                #expect(details.contains("byte offset 12"), "\(details)")
                #expect(!details.contains("Dictionary"), "\(details)")

                for body in ["1e999", #"{"message":"hi","n":-1e999}"#, "[1, 1e999]"] {
                    let big = try await f.post(path, body)
                    #expect(big.status == 400, "\(body)")
                    #expect(big.errorType == "invalid_json", "\(body)")
                    let details = try #require(big.json?["error"]?["details"]?.stringValue)
                    #expect(details.contains("out of range"), "\(body): \(details)")
                    #expect(!details.contains("Dictionary") && !details.contains("Swift"), "\(body): \(details)")
                }
            }
        }
    }

    /// A body that cannot be read (a malformed chunk size, an unknown transfer coding) is a 400,
    /// not a 413: its size has nothing to do with it.
    @Test(arguments: [
        "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        "Transfer-Encoding: gzip\r\n\r\n{}",
    ])
    func unreadableBodiesAreBadRequests(rest: String) async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            for path in ["/workflows/translate", "/agents/assistant/u"] {
                let response = try await f.raw("POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + rest)
                #expect(response.hasPrefix("HTTP/1.1 400 "), "\(path): \(response)")
                #expect(!response.contains("payload_too_large"), "\(path): \(response)")
            }
        }
    }

    @Test func payloadTypeMismatchesNameJSONTypesNotSwiftTypes() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            let cases: [(String, String)] = [
                (#""just a string""#, "payload: expected an object, found a string"),
                (#"{"text":5,"language":"fr"}"#, "payload.text: expected a string, found a number"),
                (#"{"text":"a","language":["fr"]}"#, "payload.language: expected a string, found an array"),
                ("[1,2]", "payload: expected an object, found an array"),
            ]
            for (body, expected) in cases {
                let reply = try await f.post("/workflows/translate", body)
                #expect(reply.status == 400, "\(body)")
                #expect(reply.errorType == "invalid_request", "\(body)")
                let details = try #require(reply.json?["error"]?["details"]?.stringValue)
                #expect(details.contains(expected), "\(body): \(details)")
                #expect(!details.contains("Dictionary") && !details.contains("Swift."), "\(body): \(details)")
            }
        }
    }

    @Test func sseControlFramesAdvanceTheClientsCursor() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            let runId = try await f.startRun("logs", #"{"count":2}"#)
            _ = try await f.readToEnd(runId)
            let interval = (Int64(Date().timeIntervalSince1970 * 1000) - 1_728_432_000_000) / 20_000
            let client = interval + 1_000

            let reply = try await f.get("/runs/\(runId)?offset=-1&live=sse&cursor=\(client)")
            let (bytes, continuation) = AsyncStream<ArraySlice<UInt8>>.makeStream()
            continuation.yield(ArraySlice(reply.body))
            continuation.finish()
            var controls: [JSONValue] = []
            for try await frame in bytes.asDecodedServerSentEvents() where frame.event == "control" {
                controls.append(try JSONValue(parsing: frame.data ?? "null"))
            }
            let cursors = controls.compactMap { $0["streamCursor"]?.stringValue.flatMap { Int64($0) } }
            #expect(!cursors.isEmpty && cursors.count == controls.count, "every control frame carries a cursor")
            #expect(cursors.allSatisfy { $0 > client && $0 <= client + 180 }, "advanced past the client's \(client): \(cursors)")
            #expect(cursors == cursors.sorted(), "never goes back within a connection")
            let last = try #require(controls.last)
            #expect(last["streamClosed"] == true && last["upToDate"] == true)

            // Without a cursor, or with one from the past, the current interval.
            let plain = try await f.get("/runs/\(runId)?offset=-1&live=sse&cursor=5")
            let current = try #require(plain.text.firstMatch(of: /"streamCursor":"(\d+)"/).flatMap { Int64($0.1) })
            #expect(current >= interval && current < interval + 5)
        }
    }
}
