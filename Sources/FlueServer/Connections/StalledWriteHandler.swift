import NIOCore

/// Bounds what one slow or stalled reader costs the server, per connection:
///
/// - the kernel send buffer is capped (`SO_SNDBUF`, `FlueConfiguration.sendBufferBytes`;
///   Linux doubles the value for its own bookkeeping), so a reader that stops reading holds at
///   most that much in the kernel instead of the several megabytes TCP autotuning allows;
/// - once that buffer is full, NIO's write buffer passes its high watermark (64 KiB) and the
///   connection turns unwritable; response writers then suspend (Hummingbird's outbound writer
///   waits for writability), so nothing more is read from the store for that connection;
/// - every `FlueConfiguration.writeStallTimeout` while the connection stays unwritable, the bytes
///   NIO still holds for it are compared with the last check: a reader that took some (a slow
///   one) keeps its connection, one that took nothing (a stalled one) has it reset — an abortive
///   close (`SO_LINGER` 0), so the kernel drops the unsent bytes at once instead of keeping them
///   until TCP gives up. The client can reconnect and resume from the last offset it received.
///
/// Durable Streams readers resume by offset, so dropping a stalled one loses nothing.
final class StalledWriteHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any

    private let sendBufferBytes: Int?
    private let stallTimeout: TimeAmount
    private var stallCheck: Scheduled<Void>?
    /// NIO's buffered bytes at the previous check, while unwritable.
    private var bufferedAtLastCheck: Int?
    private var context: ChannelHandlerContext?

    init(sendBufferBytes: Int?, stallTimeout: TimeAmount) {
        self.sendBufferBytes = sendBufferBytes
        self.stallTimeout = stallTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        guard let sendBufferBytes else { return }
        // Best effort: a transport without the option (a test channel) keeps its default.
        context.channel.setOption(ChannelOptions.socketOption(.so_sndbuf), value: SocketOptionValue(clamping: sendBufferBytes))
            .whenFailure { _ in }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stopChecking()
        self.context = nil
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            stopChecking()
        } else if stallCheck == nil {
            bufferedAtLastCheck = bufferedBytes(context)
            scheduleCheck(context)
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopChecking()
        context.fireChannelInactive()
    }

    private func scheduleCheck(_ context: ChannelHandlerContext) {
        stallCheck = context.eventLoop.assumeIsolated().scheduleTask(in: stallTimeout) { [weak self] in
            self?.check()
        }
    }

    private func check() {
        stallCheck = nil
        guard let context, !context.channel.isWritable else { return }
        let buffered = bufferedBytes(context)
        if let buffered, let before = bufferedAtLastCheck, buffered < before {
            // Slow, not stalled: the reader took bytes since the last check.
            bufferedAtLastCheck = buffered
            scheduleCheck(context)
            return
        }
        let channel = context.channel
        // Reset rather than close, so the kernel frees the connection's unsent bytes now.
        guard let sockets = channel as? any SocketOptionProvider else { return channel.close(promise: nil) }
        sockets.setSoLinger(NIOLinger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
    }

    private func bufferedBytes(_ context: ChannelHandlerContext) -> Int? {
        try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)
    }

    private func stopChecking() {
        stallCheck?.cancel()
        stallCheck = nil
        bufferedAtLastCheck = nil
    }
}
