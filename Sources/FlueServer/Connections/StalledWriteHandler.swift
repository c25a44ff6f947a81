import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Bounds what one slow or stalled reader costs the server, per connection:
///
/// - the kernel send buffer is capped (`SO_SNDBUF`, `FlueConfiguration.sendBufferBytes`;
///   Linux doubles the value for its own bookkeeping), so a reader that stops reading holds at
///   most that much in the kernel instead of the several megabytes TCP autotuning allows;
/// - once that buffer is full, NIO's write buffer passes its high watermark (64 KiB) and the
///   connection turns unwritable; SSE reads and sliced bodies wait at
///   `ClientConnection.writeBarrier()` before their next store read (the response writer alone
///   returns before its writes are done), so nothing more is read from the store for it;
/// - every `FlueConfiguration.writeStallTimeout` while the connection stays unwritable, the
///   server checks whether the reader took anything since the last check: on Linux, whether the
///   kernel saw more bytes acknowledged (`tcpi_bytes_acked` of `TCP_INFO`), so a reader that takes
///   even a few bytes counts; elsewhere whether NIO's buffer shrank. A slow reader keeps its
///   connection; a stalled one has it reset (`SO_LINGER` 0), so the kernel drops the unsent bytes
///   at once instead of keeping them until TCP gives up. The client can reconnect and resume from
///   the last offset it received.
///
/// Durable Streams readers resume by offset, so dropping a stalled one loses nothing.
final class StalledWriteHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any

    /// How far a reader had got at a check.
    private struct Progress: Equatable {
        /// Bytes the client acknowledged (Linux), or 0.
        var acknowledged: UInt64
        /// Bytes waiting in NIO's buffer.
        var buffered: Int

        func isAhead(of earlier: Progress) -> Bool {
            acknowledged > earlier.acknowledged || buffered < earlier.buffered
        }
    }

    private let sendBufferBytes: Int?
    private let stallTimeout: TimeAmount
    private var stallCheck: Scheduled<Void>?
    private var lastCheck: Progress?
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
            lastCheck = progress(context)
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
        let now = progress(context)
        if let lastCheck, now.isAhead(of: lastCheck) {
            // Slow, not stalled.
            self.lastCheck = now
            scheduleCheck(context)
            return
        }
        let channel = context.channel
        // Reset rather than close, so the kernel frees the connection's unsent bytes now.
        guard let sockets = channel as? any SocketOptionProvider else { return channel.close(promise: nil) }
        sockets.setSoLinger(NIOLinger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
    }

    private func progress(_ context: ChannelHandlerContext) -> Progress {
        let buffered = (try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? 0
        return Progress(acknowledged: Self.bytesAcknowledged(context.channel), buffered: buffered)
    }

    /// `tcpi_bytes_acked` of the socket's `TCP_INFO` (Linux 4.1 and later), or 0. Read as raw words:
    /// Glibc's `struct tcp_info` predates the field, and the kernel only ever appends to the struct,
    /// so it stays at byte offset 120 (`linux/tcp.h`). The call runs on the channel's event loop,
    /// so the future is already complete.
    private static func bytesAcknowledged(_ channel: any Channel) -> UInt64 {
        #if os(Linux)
        guard let sockets = channel as? any SocketOptionProvider else { return 0 }
        let future: EventLoopFuture<TCPInfoWords> = sockets.unsafeGetSocketOption(
            level: .tcp, name: NIOBSDSocket.Option(rawValue: CInt(TCP_INFO)))
        var acknowledged: UInt64 = 0
        future.assumeIsolated().whenSuccess { info in acknowledged = info.words.15 }
        return acknowledged
        #else
        return 0
        #endif
    }

    private func stopChecking() {
        stallCheck?.cancel()
        stallCheck = nil
        lastCheck = nil
    }
}

/// The first 128 bytes of the kernel's `struct tcp_info`, as 16 words (zeroed before the call).
private struct TCPInfoWords: Sendable {
    var words: (
        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64
    ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}
