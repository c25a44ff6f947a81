import NIOCore

/// Bounds what one slow or stalled reader costs the server, per connection:
///
/// - the kernel send buffer is capped (`SO_SNDBUF`, `FlueConfiguration.sendBufferBytes`;
///   Linux doubles the value for its own bookkeeping), so a reader that stops reading holds at
///   most that much in the kernel instead of the several megabytes TCP autotuning allows;
/// - once that buffer is full, NIO's write buffer passes its high watermark (64 KiB) and the
///   connection turns unwritable; response writers then suspend (Hummingbird's outbound writer
///   waits for writability), so nothing more is read from the store for that connection;
/// - a connection that stays unwritable for `FlueConfiguration.writeStallTimeout` is closed.
///   The client can reconnect and resume from the last offset it received.
///
/// Durable Streams readers resume by offset, so dropping a stalled one loses nothing.
final class StalledWriteHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any

    private let sendBufferBytes: Int?
    private let stallTimeout: TimeAmount
    private var stallCheck: Scheduled<Void>?

    init(sendBufferBytes: Int?, stallTimeout: TimeAmount) {
        self.sendBufferBytes = sendBufferBytes
        self.stallTimeout = stallTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard let sendBufferBytes else { return }
        // Best effort: a transport without the option (a test channel) keeps its default.
        context.channel.setOption(ChannelOptions.socketOption(.so_sndbuf), value: SocketOptionValue(clamping: sendBufferBytes))
            .whenFailure { _ in }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stallCheck?.cancel()
        stallCheck = nil
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            stallCheck?.cancel()
            stallCheck = nil
        } else if stallCheck == nil {
            let channel = context.channel
            stallCheck = context.eventLoop.scheduleTask(in: stallTimeout) {
                if !channel.isWritable { channel.close(promise: nil) }
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stallCheck?.cancel()
        stallCheck = nil
        context.fireChannelInactive()
    }
}
