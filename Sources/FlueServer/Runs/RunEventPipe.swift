import FluePersistence
import FlueRuntime
import Foundation
import Logging

/// Carries a run's events, in emission order, from the synchronous emitter to the store.
///
/// The `run_end` event is special: before it becomes visible the run record is finalized, so a
/// reader that saw `run_end` never reads `active` from `?meta`; after it the stream is closed.
final class RunEventPipe: Sendable {
    private let continuation: AsyncStream<FlueEvent>.Continuation
    private let consumer: Task<Void, Never>

    init(
        path: String, store: any EventStreamStore, logger: Logger,
        beforeRunEnd: @escaping @Sendable (FlueEvent.RunEnd) async -> Void
    ) {
        let (events, continuation) = AsyncStream<FlueEvent>.makeStream()
        self.continuation = continuation
        self.consumer = Task {
            let encoder = JSONEncoder.flue
            for await event in events {
                var isEnd = false
                if case .runEnd(let end) = event.body {
                    isEnd = true
                    await beforeRunEnd(end)
                }
                do {
                    try await store.append(path, try encoder.encode(event))
                    if isEnd { try await store.closeStream(path) }
                } catch {
                    logger.error(
                        "could not persist run event",
                        metadata: ["path": "\(path)", "type": "\(event.type)", "error": "\(error)"])
                }
            }
        }
    }

    /// The sink to hand to the run's emitter.
    var sink: EventSink {
        let continuation = self.continuation
        return { event in continuation.yield(event) }
    }

    /// Waits until every event emitted so far is stored.
    func drain() async {
        continuation.finish()
        await consumer.value
    }
}
