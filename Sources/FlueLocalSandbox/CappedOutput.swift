/// One output stream of a command, kept up to a limit: the first `limit` bytes are kept, the rest
/// is counted and dropped (the stream is still read to its end, so the command never blocks on a
/// full pipe).
struct CappedOutput: Sendable {
    /// Bytes kept at most (negative counts as 0).
    let limit: Int
    private(set) var kept: [UInt8] = []
    /// Bytes dropped; saturates at `Int.max`, never traps.
    private(set) var dropped = 0

    init(limit: Int) {
        self.limit = max(0, limit)
    }

    /// Whether anything was dropped.
    var truncated: Bool { dropped > 0 }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        let room = limit - kept.count
        let taken = min(room, bytes.count)
        if taken > 0 { kept.append(contentsOf: bytes.prefix(taken)) }
        let (sum, overflow) = dropped.addingReportingOverflow(bytes.count - taken)
        dropped = overflow ? Int.max : sum
    }

    /// The kept bytes as UTF-8 (invalid sequences replaced). When something was dropped, the text
    /// is cut back to a whole character and ends with `\n[output truncated: N more bytes]`, as
    /// ``VirtualSandbox`` marks it.
    var text: String {
        guard truncated else { return String(decoding: kept, as: UTF8.self) }
        let end = Self.characterBoundary(kept)
        let (more, overflow) = dropped.addingReportingOverflow(kept.count - end)
        return String(decoding: kept[..<end], as: UTF8.self)
            + "\n[output truncated: \(overflow ? Int.max : more) more bytes]"
    }

    /// The length of `bytes` without a UTF-8 sequence cut short at its end.
    static func characterBoundary(_ bytes: [UInt8]) -> Int {
        var lead = bytes.count - 1
        // Step back over at most three continuation bytes (10xxxxxx) to the sequence's lead byte.
        while lead >= 0, bytes.count - lead <= 3, bytes[lead] & 0xC0 == 0x80 { lead -= 1 }
        guard lead >= 0 else { return bytes.count }
        let byte = bytes[lead]
        let length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
        return bytes.count - lead < length ? lead : bytes.count
    }
}
