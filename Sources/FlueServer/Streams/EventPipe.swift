import FluePersistence
import FlueRuntime
import Foundation
import Logging

/// Carries events, in emission order, from a synchronous emitter to a stream in the store.
///
/// `beforeAppend` runs before an event is stored (a run finalizes its record before `run_end`
/// becomes visible, so a reader that saw `run_end` never reads `active` from `?meta`);
/// when `closesStream` says so, the stream is closed after the event.
final class EventPipe: Sendable {
    private enum Item: Sendable {
        case event(FlueEvent)
        /// Resumed once everything queued before it is stored.
        case flush(CheckedContinuation<Void, Never>)
    }

    private let continuation: AsyncStream<Item>.Continuation
    private let consumer: Task<Void, Never>

    init(
        path: String, store: any EventStreamStore, logger: Logger,
        beforeAppend: @escaping @Sendable (FlueEvent) async -> Void = { _ in },
        closesStream: @escaping @Sendable (FlueEvent) -> Bool = { _ in false }
    ) {
        let (items, continuation) = AsyncStream<Item>.makeStream()
        self.continuation = continuation
        self.consumer = Task {
            let encoder = JSONEncoder.flue
            for await item in items {
                guard case .event(let event) = item else {
                    if case .flush(let waiter) = item { waiter.resume() }
                    continue
                }
                await beforeAppend(event)
                do {
                    try await store.append(path, try encoder.encode(event))
                    if closesStream(event) { try await store.closeStream(path) }
                } catch {
                    logger.error(
                        "could not persist event",
                        metadata: ["path": "\(path)", "type": "\(event.type)", "error": "\(error)"])
                }
            }
        }
    }

    /// The sink to hand to an emitter.
    var sink: EventSink {
        let continuation = self.continuation
        return { event in continuation.yield(.event(event)) }
    }

    /// Waits until every event emitted so far is stored; the pipe stays open.
    func flush() async {
        await withCheckedContinuation { waiter in
            if case .terminated = continuation.yield(.flush(waiter)) { waiter.resume() }
        }
    }

    /// Waits until every event emitted so far is stored; the pipe accepts nothing after.
    func drain() async {
        continuation.finish()
        await consumer.value
    }
}
