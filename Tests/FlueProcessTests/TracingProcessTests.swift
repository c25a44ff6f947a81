import AsyncHTTPClient
import FlueTestSupport
import Foundation
import NIOCore
import Testing

/// The example server exports its spans over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set,
/// continuing the caller's trace into the model request (issue 15, item 1).
@Suite struct TracingProcessTests {
    @Test func spansReachTheCollectorAndTheModelRequestCarriesTheTrace() async throws {
        let collector = try await OTLPCollector.start()
        let model = try await FakeModelServer.start()
        try await model.scoped {
            let server = try await ExampleServer.start(
                model, ["OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "100"])
            let traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
            var request = HTTPClientRequest(url: "\(server.base)/workflows/translate?wait=result")
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.headers.add(name: "traceparent", value: "00-\(traceId)-00f067aa0ba902b7-01")
            request.body = .bytes(ByteBuffer(string: #"{"text":"Hello","language":"French"}"#))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            _ = try await response.body.collect(upTo: 1 << 20)
            #expect(response.status == .ok)
            await server.stop()  // flushes the last spans

            let exports = collector.exports
            #expect(!exports.isEmpty, "the collector received spans")
            #expect(exports.allSatisfy { $0.contentType == "application/x-protobuf" })
            let bytes = exports.reduce(into: Data()) { $0.append($1.body) }
            for text in ["workflow translate", "chat ", "execute_tool finish", "gen_ai.request.model", "gen_ai.usage.input_tokens", "hello-agents"] {
                #expect(bytes.range(of: Data(text.utf8)) != nil, "the export has \(text)")
            }
            let traceBytes = Data(stride(from: 0, to: traceId.count, by: 2).map { offset in
                let start = traceId.index(traceId.startIndex, offsetBy: offset)
                return UInt8(traceId[start..<traceId.index(start, offsetBy: 2)], radix: 16)!
            })
            #expect(bytes.range(of: traceBytes) != nil, "the spans are in the caller's trace")
            let modelRequests = await model.requests()
            #expect(
                modelRequests.contains { $0.headers["traceparent"]?.hasPrefix("00-\(traceId)-") == true },
                "the model request carries the trace: \(modelRequests.map { $0.headers["traceparent"] ?? "none" })")
        }
        await collector.stop()
    }
}
