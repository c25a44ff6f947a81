import Foundation
import Synchronization

/// Receives events as they are emitted. Called synchronously, in order, under the emitter's
/// lock: keep it fast and hand slow work (persistence, network) to a queue of your own.
public typealias EventSink = @Sendable (FlueEvent) -> Void

/// Numbers and timestamps the events of one context (a run, or one agent submission) and hands
/// them to a sink. Safe to call from concurrent tasks; indices are gap-free and delivery order
/// equals index order.
public final class EventEmitter: Sendable {
    private struct State {
        var nextIndex: Int
    }

    private let state: Mutex<State>
    private let sink: EventSink
    /// Correlation fields stamped on every event (`runId` or `instanceId`, …).
    public let base: EventCorrelation

    /// Creates an emitter whose first event gets `startIndex`.
    public init(base: EventCorrelation = EventCorrelation(), startIndex: Int = 0, sink: @escaping EventSink) {
        self.base = base
        self.sink = sink
        self.state = Mutex(State(nextIndex: startIndex))
    }

    /// An emitter that drops everything.
    public static var discarding: EventEmitter { EventEmitter(sink: { _ in }) }

    /// Emits one event with `correlation` layered over the base correlation.
    public func emit(_ body: FlueEvent.Body, _ correlation: EventCorrelation = EventCorrelation()) {
        let merged = base.merging(correlation)
        state.withLock { state in
            let event = FlueEvent(eventIndex: state.nextIndex, correlation: merged, body: body)
            state.nextIndex += 1
            sink(event)
        }
    }

    /// Emits one event with `correlation` instead of the base correlation (in this emitter's
    /// index sequence): a host announcing another context's event on the same stream.
    public func emit(_ body: FlueEvent.Body, replacingCorrelation correlation: EventCorrelation) {
        state.withLock { state in
            let event = FlueEvent(eventIndex: state.nextIndex, correlation: correlation, body: body)
            state.nextIndex += 1
            sink(event)
        }
    }

    /// The index the next event will get.
    public var nextIndex: Int { state.withLock { $0.nextIndex } }
}
