import FluePersistence
import Foundation
import HTTPTypes

/// Header values of Durable Streams reads.
enum StreamHeaders {
    /// `"<base64(path)>:<start>:<end>[:c]"`: changes whenever the response would.
    static func etag(path: String, start: StreamOffset, end: StreamOffset, closedAndCaughtUp: Bool) -> String {
        "\"" + Data(path.utf8).base64EncodedString() + ":\(start):\(end)" + (closedAndCaughtUp ? ":c" : "") + "\""
    }

    /// 20-second intervals since 2024-10-09T00:00:00Z (Durable Streams `PROTOCOL.md` §8.1).
    static func currentInterval(now: Date = Date()) -> Int64 {
        (Int64(now.timeIntervalSince1970 * 1000) - 1_728_432_000_000) / 20_000
    }

    /// The cursor of a live response: the current interval, or, when the client's `cursor` is
    /// at or past it, the client's value plus 1…180 at random so caches never serve a stale
    /// response. A client value that is not a decimal `Int64`, or that cannot be advanced without
    /// overflowing, is ignored (the current interval is answered).
    static func cursor(clientCursor: String? = nil, now: Date = Date()) -> String {
        String(cursorValue(clientCursor: clientCursor, now: now))
    }

    static func cursorValue(clientCursor: String?, now: Date = Date()) -> Int64 {
        let interval = currentInterval(now: now)
        if let clientCursor, let client = Int64(clientCursor), client >= interval {
            let (advanced, overflow) = client.addingReportingOverflow(Int64.random(in: 1...180))
            if !overflow { return advanced }
        }
        return interval
    }

    /// Headers shared by catch-up and long-poll 200 responses.
    static func read(_ result: StreamReadResult) -> HTTPFields {
        var headers = HTTPFields.flueSecurity
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        headers[.streamNextOffset] = result.nextOffset.description
        if result.upToDate { headers[.streamUpToDate] = "true" }
        if result.closed && result.upToDate { headers[.streamClosed] = "true" }
        return headers
    }
}
