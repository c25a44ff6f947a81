import NIOCore
import NIOPosix
import Synchronization

/// An HTTP/1.1 server on 127.0.0.1 that answers each connection's first request with the next
/// scripted response (raw bytes, in the given chunks), then closes the connection: for stream
/// edge cases a real server only produces by chance (a data frame whose control frame never
/// comes, a line split at every byte, a 429 with Retry-After).
final class ScriptedHTTPServer: Sendable {
    let port: Int
    private let state: State
    private let task: Task<Void, Never>

    /// The scripts still to answer with, and the request lines received.
    private final class State: Sendable {
        let scripts = Mutex<[[String]]>([])
        let requestLines = Mutex<[String]>([])
    }

    /// The request lines received (`GET /runs/r?offset=-1&live=sse HTTP/1.1`), in order.
    var requests: [String] { state.requestLines.withLock { $0 } }

    private init(port: Int, state: State, task: Task<Void, Never>) {
        self.port = port
        self.state = state
        self.task = task
    }

    static func start() async throws -> ScriptedHTTPServer {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let state = State()
        let task = Task<Void, Never> {
            _ = try? await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        group.addTask { await Self.answer(connection, state) }
                    }
                }
            }
        }
        return ScriptedHTTPServer(port: server.channel.localAddress?.port ?? 0, state: state, task: task)
    }

    /// Queues a response: its chunks are written one by one, then the connection is closed.
    func enqueue(_ chunks: [String]) {
        state.scripts.withLock { $0.append(chunks) }
    }

    /// A whole response with a status line, headers and a body, in one chunk.
    static func response(_ status: String, _ headers: [String: String] = [:], body: String = "") -> String {
        var head = "HTTP/1.1 \(status)\r\nconnection: close\r\ncontent-length: \(body.utf8.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        return head + "\r\n" + body
    }

    /// The head of an SSE response (the body follows in later chunks, until the close).
    static let sseHead = "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: text/event-stream\r\n\r\n"

    private static func answer(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, _ state: State) async {
        _ = try? await connection.executeThenClose { inbound, outbound in
            var received = ""
            for try await buffer in inbound {
                received += String(buffer: buffer)
                if received.contains("\r\n\r\n") { break }
            }
            state.requestLines.withLock { $0.append(String(received.split(separator: "\r\n").first ?? "")) }
            let chunks = state.scripts.withLock { $0.isEmpty ? [Self.response("500 No Script")] : $0.removeFirst() }
            for chunk in chunks {
                try await outbound.write(ByteBuffer(string: chunk))
            }
        }
    }

    func stop() async {
        task.cancel()
        await task.value
    }
}
