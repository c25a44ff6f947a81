/// A byte stream followed by one extra line break pair at its end.
///
/// An SSE event is dispatched at a blank line; a server that closes the body right after its last
/// `data:` line (no blank line, sometimes no line break) leaves that event pending, and the SSE
/// decoder in use (swift-openapi-runtime) drops a pending event at end of input. Appending
/// `\n\n` once the body has ended dispatches it. A body that already ended with a blank line
/// gets empty events, which carry no `data` and are ignored by the parsers.
struct EndOfStreamFlush<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable
where Base.Element == ArraySlice<UInt8> {
    typealias Element = ArraySlice<UInt8>
    var base: Base

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var flushed = false

        mutating func next() async throws -> ArraySlice<UInt8>? {
            guard !flushed else { return nil }
            if let chunk = try await base.next() { return chunk }
            flushed = true
            return ArraySlice("\n\n".utf8)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator()) }
}

extension AsyncSequence where Self: Sendable, Element == ArraySlice<UInt8> {
    /// This byte stream with `\n\n` appended at its end (see `EndOfStreamFlush`).
    func flushingLastEvent() -> EndOfStreamFlush<Self> { EndOfStreamFlush(base: self) }
}
