import FluePersistence
import Foundation
import HTTPTypes

/// Header values of Durable Streams reads.
enum StreamHeaders {
    /// `"<base64(path)>:<start>:<end>[:c]"`: changes whenever the response would.
    static func etag(path: String, start: StreamOffset, end: StreamOffset, closedAndCaughtUp: Bool) -> String {
        "\"" + Data(path.utf8).base64EncodedString() + ":\(start):\(end)" + (closedAndCaughtUp ? ":c" : "") + "\""
    }

    /// 20-second intervals since 2024-10-09T00:00:00Z; a client cursor at or past the current
    /// interval is pushed forward at random so caches never serve a stale long-poll.
    static func cursor(clientCursor: String? = nil, now: Date = Date()) -> String {
        let interval = (Int64(now.timeIntervalSince1970 * 1000) - 1_728_432_000_000) / 20_000
        if let clientCursor, let client = Int64(clientCursor), client >= interval {
            return String(client + Int64.random(in: 1...180))
        }
        return String(interval)
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
