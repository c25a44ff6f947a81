import NIOCore
import NIOPosix
import Synchronization

/// A TCP relay on 127.0.0.1 in front of a server, whose connections the test can cut at will:
/// a client reading through it sees its connection closed mid-response, as when a proxy or a
/// load balancer drops it.
final class TCPCutter: Sendable {
    let port: Int
    private let open = Mutex<[any Channel]>([])
    private let acceptedCount = Atomic<Int>(0)
    private let task: Task<Void, Never>

    /// Connections accepted so far.
    var accepted: Int { acceptedCount.load(ordering: .relaxed) }

    private init(port: Int, task: Task<Void, Never>) {
        self.port = port
        self.task = task
    }

    static func start(forwardingTo target: Int) async throws -> TCPCutter {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let port = server.channel.localAddress?.port ?? 0
        let relays = RelaySet()
        let task = Task<Void, Never> {
            _ = try? await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        group.addTask { await relays.relay(connection, to: target) }
                    }
                }
            }
        }
        let cutter = TCPCutter(port: port, task: task)
        relays.cutter.withLock { $0 = cutter }
        return cutter
    }

    /// Closes every open connection (both sides).
    func cutAll() {
        let channels = open.withLock { channels in
            defer { channels.removeAll() }
            return channels
        }
        for channel in channels { channel.close(promise: nil) }
    }

    func stop() async {
        cutAll()
        task.cancel()
        await task.value
    }

    fileprivate func register(_ channels: [any Channel]) {
        acceptedCount.add(1, ordering: .relaxed)
        open.withLock { $0.append(contentsOf: channels) }
    }
}

/// The relays of one cutter (created before the cutter knows its port).
private final class RelaySet: Sendable {
    let cutter = Mutex<TCPCutter?>(nil)

    func relay(_ inbound: NIOAsyncChannel<ByteBuffer, ByteBuffer>, to target: Int) async {
        do {
            let outbound = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: target) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            cutter.withLock { $0 }?.register([inbound.channel, outbound.channel])
            try await inbound.executeThenClose { fromClient, toClient in
                try await outbound.executeThenClose { fromServer, toServer in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { for try await buffer in fromClient { try await toServer.write(buffer) } }
                        group.addTask { for try await buffer in fromServer { try await toClient.write(buffer) } }
                        // Either side ending ends the relay (and closes both).
                        _ = try await group.next()
                        group.cancelAll()
                    }
                }
            }
        } catch {
            inbound.channel.close(promise: nil)
        }
    }
}
