/// A position in an event stream. Reads return events strictly after it.
///
/// On the wire it is opaque text: two 16-digit zero-padded integers joined by `_`, the first
/// always 0 and the second the number of events before the position
/// (`0000000000000000_0000000000000005` = after the first five events, sequences 0…4). The start of
/// a stream is `0000000000000000_0000000000000000`, so even an empty stream has a real offset
/// (Durable Streams `PROTOCOL.md` §6: `-1` is a sentinel a server never issues). Clients may still
/// send `-1` for the start. Because the second component counts events, the text sorts the same
/// way as the positions it names.
public struct StreamOffset: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    /// Sequence number of the last event covered; -1 before the first event.
    public var sequence: Int64

    public init(sequence: Int64) { self.sequence = sequence }

    /// Before the first event.
    public static let start = StreamOffset(sequence: -1)

    /// The largest event count an offset can name: 16 decimal digits.
    public static let maxCount: Int64 = 9_999_999_999_999_999

    /// Parses `-1` or `<zeros>_<count>` (at most 16 digits each, the first component all zeros);
    /// `nil` for anything else, including `now` (which the read route resolves against the
    /// stream's tail) and offsets whose first component is not zero (no server of ours issues them).
    public init?(parsing text: String) {
        if text == "-1" {
            self = .start
            return
        }
        let parts = text.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 2,
            (1...16).contains(parts[0].count), parts[0].allSatisfy({ $0 == "0" }),
            (1...16).contains(parts[1].count), parts[1].allSatisfy(\.isASCIIDigit),
            let count = Int64(parts[1])
        else { return nil }
        self.sequence = count - 1
    }

    /// The number of events before this position (0 at the start); never negative.
    public var eventCount: Int64 {
        sequence < 0 ? 0 : (sequence == .max ? .max : sequence + 1)
    }

    public var description: String {
        let digits = String(eventCount)
        return "0000000000000000_" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }

    public static func < (lhs: StreamOffset, rhs: StreamOffset) -> Bool { lhs.sequence < rhs.sequence }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let offset = StreamOffset(parsing: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad offset \(text)"))
        }
        self = offset
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
