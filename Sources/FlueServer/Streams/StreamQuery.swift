import FluePersistence
import Hummingbird

/// Where a read starts, before it is resolved against the stream.
enum RequestedOffset: Equatable {
    case start
    case now
    case after(StreamOffset)
}

/// The live mode of a read.
enum LiveMode: String {
    case longPoll = "long-poll"
    case sse
}

/// The validated query of a Durable Streams `GET`.
struct StreamQuery {
    var offset: RequestedOffset
    var live: LiveMode?
    /// At most this many events from the end (`offset=-1` only).
    var tail: Int64?
    var cursor: String?

    /// Validates in the protocol's order: duplicate offset, duplicate tail, bad tail, live without
    /// offset, bad live, bad offset.
    init(_ parameters: Parameters) throws {
        let offsets = parameters.getAll("offset")
        let tails = parameters.getAll("tail")
        let lives = parameters.getAll("live")
        guard offsets.count <= 1 else { throw FlueHTTPError.invalidRequest("Duplicate offset parameters are not allowed.") }
        guard tails.count <= 1 else { throw FlueHTTPError.invalidRequest("Duplicate tail parameters are not allowed.") }
        if let tail = tails.first {
            guard tail.wholeMatch(of: /[1-9][0-9]*/) != nil else {
                throw FlueHTTPError.invalidRequest("Tail must be an integer greater than or equal to 1.")
            }
            // No upper bound (as Flue): a tail longer than any stream means "all of it".
            self.tail = Int64(tail) ?? .max
        } else {
            self.tail = nil
        }
        if !lives.isEmpty && offsets.isEmpty {
            throw FlueHTTPError.invalidRequest("Offset is required for live mode.")
        }
        if let live = lives.first {
            guard lives.count == 1, let mode = LiveMode(rawValue: String(live)) else {
                throw FlueHTTPError.invalidRequest("Invalid live mode. Use \"long-poll\" or \"sse\".")
            }
            self.live = mode
        } else {
            self.live = nil
        }
        switch offsets.first.map({ String($0) }) {
        case nil, "-1": self.offset = .start
        case "now": self.offset = .now
        case let text?:
            guard let parsed = StreamOffset(parsing: text) else {
                throw FlueHTTPError.invalidRequest("Invalid offset format.")
            }
            self.offset = .after(parsed)
        }
        self.cursor = parameters.get("cursor")
    }
}
