import Foundation
import HTTPTypes
import Hummingbird

/// Flue's path parameters, percent-decoded, and the shapes of its paths.
enum PathParameters {
    /// The path parameter `name`, percent-decoded exactly once (RFC 3986 §2.1) before any
    /// validation or lookup: clients that encode path segments (the Flue SDK uses
    /// `encodeURIComponent`) reach the same agent instance as clients that send `@`, `:` or `+`
    /// raw. `%2540` decodes to `%40`, which then fails validation: nothing is decoded twice.
    ///
    /// - Throws: `400 invalid_request` when the segment holds a malformed escape or is not UTF-8.
    static func decoded(_ name: String, _ parameters: Parameters) throws -> String {
        let raw = parameters.get(name) ?? ""
        guard let decoded = raw.removingPercentEncoding else {
            throw FlueHTTPError.invalidRequest(
                "The path segment \"\(raw)\" has a malformed percent-encoding (each % must start a %XX escape of UTF-8 bytes).")
        }
        return decoded
    }

    /// `value` encoded for use as one path segment: everything but RFC 3986 unreserved
    /// characters and `:@+` is escaped (so `/`, `%`, `?` and `#` never change the URL's shape).
    static func encoded(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: segmentAllowed) ?? value
    }

    private static let segmentAllowed: CharacterSet = {
        var set = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        set.insert(charactersIn: "-._~:@+")
        return set
    }()

    /// The methods Flue serves on `path` (relative to the mount prefix, no query), or `nil` when
    /// it is not one of Flue's paths: `POST` on `/workflows/:name`, `GET`/`HEAD` on
    /// `/runs/:runId`, `GET`/`HEAD`/`POST` on `/agents/:name/:id`, `GET` on `/openapi.json`.
    static func allowedMethods(path: String) -> [HTTPRequest.Method]? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        switch (segments.first, segments.count) {
        case ("workflows"?, 2): return [.post]
        case ("runs"?, 2): return [.get, .head]
        case ("agents"?, 3): return [.get, .head, .post]
        case ("openapi.json"?, 1): return [.get]
        default: return nil
        }
    }
}
