import FluePersistence
import FlueRuntime
import Foundation
import Logging
import Synchronization

/// Carries events, in emission order, from a synchronous emitter to a stream in the store.
///
/// Events that pile up while a write is in flight go out together in the next write
/// (`appendBatch`, one statement on Postgres), so a fast producer (a model streaming text
/// deltas) costs a few writes per second instead of one per event. `beforeAppend` runs for each
/// event before it is stored; an event for which `closesStream` is true is stored on its own,
/// after everything before it, and the stream is closed right after it (a run finalizes its
/// record in `beforeAppend(run_end)`, so a reader that saw `run_end` never reads `active`).
final class EventPipe: Sendable {
    private enum Item: Sendable {
        case event(FlueEvent)
        /// Resumed once everything queued before it is stored.
        case flush(CheckedContinuation<Void, Never>)
    }

    /// Events waiting to be written, shared by the emitter side and the writer task.
    private final class Queue: Sendable {
        private let state = Mutex<(items: [Item], finished: Bool)>(([], false))

        /// Queues an item; false once the pipe is drained.
        func push(_ item: Item) -> Bool {
            state.withLock { state in
                guard !state.finished else { return false }
                state.items.append(item)
                return true
            }
        }

        func takeAll() -> [Item] {
            state.withLock { state in
                defer { state.items = [] }
                return state.items
            }
        }

        func finish() { state.withLock { $0.finished = true } }
    }

    /// The most events one write carries.
    static let maxBatch = 500

    private let queue = Queue()
    private let wake: AsyncStream<Void>.Continuation
    private let writer: Task<Void, Never>

    init(
        path: String, store: any EventStreamStore, logger: Logger,
        beforeAppend: @escaping @Sendable (FlueEvent) async -> Void = { _ in },
        closesStream: @escaping @Sendable (FlueEvent) -> Bool = { _ in false }
    ) {
        let (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.wake = wake
        let queue = self.queue
        self.writer = Task {
            let encoder = JSONEncoder.flue
            var batch: [FlueEvent] = []
            func write() async {
                guard !batch.isEmpty else { return }
                do {
                    try await store.appendBatch(path, try batch.map { try encoder.encode($0) })
                } catch {
                    logger.error(
                        "could not persist events",
                        metadata: ["path": "\(path)", "types": "\(batch.map(\.type))", "error": "\(error)"])
                }
                batch = []
            }
            func process(_ items: [Item]) async {
                for item in items {
                    switch item {
                    case .flush(let waiter):
                        await write()
                        waiter.resume()
                    case .event(let event) where closesStream(event):
                        await write()
                        await beforeAppend(event)
                        batch = [event]
                        await write()
                        do {
                            try await store.closeStream(path)
                        } catch {
                            logger.error("could not close stream", metadata: ["path": "\(path)", "error": "\(error)"])
                        }
                    case .event(let event):
                        await beforeAppend(event)
                        batch.append(event)
                        if batch.count >= Self.maxBatch { await write() }
                    }
                }
                await write()
            }
            for await _ in wakes { await process(queue.takeAll()) }
            await process(queue.takeAll())
        }
    }

    /// The sink to hand to an emitter.
    var sink: EventSink {
        let queue = self.queue
        let wake = self.wake
        return { event in
            if queue.push(.event(event)) { wake.yield() }
        }
    }

    /// Waits until every event emitted so far is stored; the pipe stays open.
    func flush() async {
        await withCheckedContinuation { waiter in
            if queue.push(.flush(waiter)) { wake.yield() } else { waiter.resume() }
        }
    }

    /// Waits until every event emitted so far is stored; the pipe accepts nothing after.
    func drain() async {
        queue.finish()
        wake.finish()
        await writer.value
    }
}
