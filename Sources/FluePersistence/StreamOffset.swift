/// A position in an event stream. Reads return events strictly after it.
///
/// On the wire it is opaque text: `-1` before the first event, otherwise two 16-digit
/// zero-padded integers joined by `_` (`0000000000000000_0000000000000005`), the first always 0
/// and the second the sequence number of the last event read.
public struct StreamOffset: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    /// Sequence number of the last event covered; -1 before the first event.
    public var sequence: Int64

    public init(sequence: Int64) { self.sequence = sequence }

    /// Before the first event.
    public static let start = StreamOffset(sequence: -1)

    /// Parses `-1` or `<digits>_<digits>`; `nil` for anything else (including `now`, which the
    /// read route resolves against the stream's tail).
    public init?(parsing text: String) {
        if text == "-1" {
            self = .start
            return
        }
        let parts = text.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }),
            let sequence = Int64(parts[1])
        else { return nil }
        self.sequence = sequence
    }

    public var description: String {
        guard sequence >= 0 else { return "-1" }
        return "0000000000000000_" + String(repeating: "0", count: max(0, 16 - String(sequence).count)) + String(sequence)
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
