import FlueEngine
import Foundation
import NIOCore
import Synchronization

/// What a request handler can know about its client's connection: whether the client is gone.
///
/// The client is gone once its connection closed or it shut down its sending side (a FIN while the
/// server is still answering: HTTP/1.1 clients do not half-close and then wait for a response, and
/// Go's net/http treats it the same way, cancelling the request's context). Live reads watch this
/// so a long-poll or SSE read whose client left releases its live-read slot and its store
/// subscription at once, instead of at the next write or the end of the poll.
///
/// Set for each request by `FlueServer.application(router:)` (`ClientConnection.current`); an app that
/// mounts `FlueRoutes` on its own `Application` has none, and its live reads end at their next
/// write or poll timeout instead.
public final class ClientConnection: Sendable {
    private struct State {
        var channel: (any Channel)?
        /// Writers waiting for the connection to turn writable.
        var writableWaiters: [UUID: EventLoopPromise<Void>] = [:]
        /// Barriers cancelled before they registered.
        var cancelledWaiters: Set<UUID> = []
    }

    private let state = Mutex(State())
    private let gone = Latch()

    init() {}

    /// The connection of the request being handled, if the server tracks it.
    @TaskLocal public static var current: ClientConnection?

    /// True once the client closed its connection or its sending side.
    public var isGone: Bool { gone.isSet }

    /// A sequence that finishes when the client is gone (at once if it already is).
    func goneSignal() -> AsyncStream<Void> { gone.signal() }

    func markGone() { gone.set() }

    /// Returns once everything written so far has reached NIO and the connection can take more:
    /// at once if it is writable, else when it turns writable again or closes.
    ///
    /// A response writer (NIO's async writer) hands each write to the event loop and returns before
    /// it is performed, so a producer that only relies on it can queue many buffers before the
    /// connection is marked unwritable. Stream reads call this before reading the next batch, so a
    /// reader that stops reading holds at most what is in flight, not the rest of the stream. This
    /// check runs on the event loop after the writes queued before it, so it sees their effect.
    func writeBarrier() async {
        guard let channel = state.withLock({ $0.channel }) else { return }
        let eventLoop = channel.eventLoop
        let id = UUID()
        await withTaskCancellationHandler {
            let ready = eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
                if channel.isWritable || !channel.isActive { return eventLoop.makeSucceededVoidFuture() }
                let promise = eventLoop.makePromise(of: Void.self)
                let registered = self.state.withLock { state in
                    guard state.cancelledWaiters.remove(id) == nil else { return false }
                    state.writableWaiters[id] = promise
                    return true
                }
                if !registered { promise.succeed() }
                return promise.futureResult
            }
            try? await ready.get()
        } onCancel: {
            let waiter = self.state.withLock { state -> EventLoopPromise<Void>? in
                if let waiter = state.writableWaiters.removeValue(forKey: id) { return waiter }
                state.cancelledWaiters.insert(id)
                return nil
            }
            waiter?.succeed()
        }
    }

    /// The connection turned writable, or closed, or the client left: every barrier returns.
    fileprivate func releaseWriters() {
        let waiters = state.withLock { state in
            defer { state.writableWaiters = [:] }
            return Array(state.writableWaiters.values)
        }
        for waiter in waiters { waiter.succeed() }
    }

    fileprivate func attach(_ channel: (any Channel)?) {
        state.withLock { $0.channel = channel }
    }

    /// `task`'s value, or `FlueHTTPError.clientClosedRequest` as soon as the client is gone first.
    /// Awaiting a `Task`'s value cannot be cancelled, so the two waits run in helper tasks: one
    /// ends with `task`, the other when either finishes.
    func value<T: Sendable>(of task: Task<T, Never>) async throws -> T {
        let gone = goneSignal()
        let outcome: T? = await withCheckedContinuation { continuation in
            let once = ResumeOnce(continuation)
            let watcher = Task {
                for await _ in gone {}
                if !Task.isCancelled { once.resume(nil) }
            }
            Task {
                let value = await task.value
                watcher.cancel()
                once.resume(value)
            }
        }
        guard let outcome else { throw FlueHTTPError.clientClosedRequest }
        return outcome
    }

    // MARK: lookup by channel

    /// Open connections by channel, so the responder can find the one a request came on.
    private static let byChannel = Mutex<[ObjectIdentifier: ClientConnection]>([:])

    static func register(_ connection: ClientConnection, for channel: any Channel) {
        byChannel.withLock { $0[ObjectIdentifier(channel)] = connection }
    }

    static func unregister(_ channel: any Channel) {
        _ = byChannel.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    static func lookup(_ channel: any Channel) -> ClientConnection? {
        byChannel.withLock { $0[ObjectIdentifier(channel)] }
    }
}

/// Resumes a continuation once; later calls do nothing.
private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T?, Never>?>

    init(_ continuation: CheckedContinuation<T?, Never>) {
        self.continuation = Mutex(continuation)
    }

    func resume(_ value: T?) {
        continuation.withLock { $0.take() }?.resume(returning: value)
    }
}

/// Tracks one connection's `ClientConnection`: registers it for the responder, marks the client
/// gone on a FIN (`ChannelEvent.inputClosed`; Hummingbird allows half-closure) or when the channel
/// closes, and releases `writeBarrier()` waiters when the connection turns writable or closes.
final class ClientDisconnectHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any

    private let connection = ClientConnection()

    func handlerAdded(context: ChannelHandlerContext) {
        connection.attach(context.channel)
        ClientConnection.register(connection, for: context.channel)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ClientConnection.unregister(context.channel)
        connection.markGone()
        connection.releaseWriters()
        connection.attach(nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { connection.releaseWriters() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            connection.markGone()
            connection.releaseWriters()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.markGone()
        connection.releaseWriters()
        context.fireChannelInactive()
    }
}
