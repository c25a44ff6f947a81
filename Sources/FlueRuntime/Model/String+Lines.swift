extension String {
    /// The lines, split at `\n` and `\r\n` (which Swift holds as one Character), without the
    /// empty piece after a final newline.
    package func splitLines() -> [Substring] {
        var lines = split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        if lines.last == "" { lines.removeLast() }
        return lines
    }
}
