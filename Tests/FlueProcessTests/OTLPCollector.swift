import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// An OTLP/HTTP trace receiver on 127.0.0.1: keeps the body and content type of every
/// `POST /v1/traces` (protobuf `ExportTraceServiceRequest`s) and answers 200.
final class OTLPCollector: Sendable {
    struct Export: Sendable {
        var contentType: String?
        var body: Data
    }

    let port: Int
    private let received: Received
    private let task: Task<Void, any Error>
    private let group: ServiceGroup

    var url: String { "http://127.0.0.1:\(port)" }
    var exports: [Export] { received.exports.withLock { $0 } }

    private init(port: Int, received: Received, task: Task<Void, any Error>, group: ServiceGroup) {
        self.port = port
        self.received = received
        self.task = task
        self.group = group
    }

    static func start() async throws -> OTLPCollector {
        let store = Received()
        let router = Router()
        router.post("/v1/traces") { request, _ in
            let body = try await request.body.collect(upTo: 16 << 20)
            store.append(Export(contentType: request.headers[.contentType], body: Data(body.readableBytesView)))
            return Response(status: .ok, headers: [.contentType: "application/x-protobuf"])
        }
        let (bound, continuation) = AsyncStream<Int>.makeStream()
        let logger = Logger(label: "otlp-collector")
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: app)], gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        var iterator = bound.makeAsyncIterator()
        let port = await iterator.next() ?? 0
        return OTLPCollector(port: port, received: store, task: task, group: group)
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }

    /// The exports so far, shared with the route.
    private final class Received: Sendable {
        let exports = Mutex<[Export]>([])
        func append(_ export: Export) { exports.withLock { $0.append(export) } }
    }
}
