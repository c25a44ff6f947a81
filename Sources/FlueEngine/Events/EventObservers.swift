import FlueRuntime
import Foundation
import Synchronization

/// An event as the host's observers see it (``Engine/observe(_:)``).
public struct ObservedEvent: Sendable {
    /// Where an event belongs.
    public enum Source: Sendable, Hashable {
        /// A workflow run's stream (`runs/<runId>`).
        case run(runId: String, workflow: String)
        /// An agent instance's stream (`agents/<agent>/<id>`).
        case instance(agent: String, id: String)
    }

    public var event: FlueEvent
    public var source: Source

    /// The stream the event is stored on.
    public var streamPath: String {
        switch source {
        case .run(let runId, _): "runs/\(runId)"
        case .instance(let agent, let id): AgentAddress.streamPath(SessionKey(agent: agent, instanceId: id))
        }
    }
}

/// Stops an observation started with ``Engine/observe(_:)``.
public struct EventObservation: Sendable {
    fileprivate let id: Int
    fileprivate let observers: EventObservers

    /// The handler is not called after this returns.
    public func cancel() { observers.remove(id) }
}

/// The host's event observers: called for every event of every run and instance this process
/// emits, in emission order per stream.
final class EventObservers: Sendable {
    typealias Handler = @Sendable (ObservedEvent) -> Void
    private let handlers = Mutex<(next: Int, all: [(id: Int, handler: Handler)])>((0, []))

    func add(_ handler: @escaping Handler) -> EventObservation {
        let id = handlers.withLock { state in
            state.next += 1
            state.all.append((state.next, handler))
            return state.next
        }
        return EventObservation(id: id, observers: self)
    }

    fileprivate func remove(_ id: Int) {
        handlers.withLock { $0.all.removeAll { $0.id == id } }
    }

    /// The sink that shows each event to every observer, then passes it on.
    func observing(_ source: ObservedEvent.Source, then sink: @escaping EventSink) -> EventSink {
        { event in
            for (_, handler) in self.handlers.withLock({ $0.all }) { handler(ObservedEvent(event: event, source: source)) }
            sink(event)
        }
    }
}

extension Engine {
    /// Calls `handler` with every event of every workflow run and agent instance this process
    /// emits, as it is emitted, in order per stream (what metrics and application sinks are built
    /// on; Flue's `observe`). The handler runs on the emitting task, inside the stream's ordering:
    /// keep it fast and non-blocking, and hand slow work (network, disk) to a queue of your own.
    /// Events of other replicas are not seen here; read their streams instead.
    @discardableResult
    public func observe(_ handler: @escaping @Sendable (ObservedEvent) -> Void) -> EventObservation {
        observers.add(handler)
    }
}
