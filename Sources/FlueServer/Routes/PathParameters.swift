import FlueEngine
import FlueRuntime
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

    /// `context` with the named path parameters replaced by their decoded values (see
    /// `decoded(_:_:)`), so the handler and any route guard see the same decoded name and id.
    static func decoding<Context: RequestContext>(_ names: [String], in context: Context) throws -> Context {
        var context = context
        for name in names {
            context.coreContext.parameters[Substring(name)] = Substring(try decoded(name, context.parameters))
        }
        return context
    }

    /// `"/"` or `"/api"`: a mount prefix with its slashes normalized.
    static func normalizedPrefix(_ prefix: String) -> String {
        "/" + prefix.split(separator: "/").joined(separator: "/")
    }

    /// `http://<authority><mount prefix>`: the request's origin and the part of its path before
    /// the route's own `segments` (which are the last ones, since the route matched).
    static func mountURL(_ request: Request, routeSegments segments: Int, publicURL: String?) -> String {
        let path = request.uri.path.split(separator: "/", omittingEmptySubsequences: false)
        let prefix = path.dropLast(segments).joined(separator: "/")
        if let publicURL { return publicURL + prefix }
        let forwarded = request.headers[values: .xForwardedProto].first?.split(separator: ",").first
        let scheme = forwarded?.trimmingCharacters(in: .whitespaces).lowercased() == "https" ? "https" : "http"
        return "\(scheme)://\(request.head.authority ?? "localhost")\(prefix)"
    }

    /// `value` encoded for use as one path segment: everything but RFC 3986 unreserved
    /// characters and `:@+` is escaped (so `/`, `%`, `?` and `#` never change the URL's shape).
    static func encoded(_ value: String) -> String {
        PathSegment.encoded(value)
    }

    /// Methods served on `/workflows/:name`, `/runs/:runId`, `/agents/:name/:id`, `/openapi.json`.
    static let workflowMethods: [HTTPRequest.Method] = [.post]
    static let runMethods: [HTTPRequest.Method] = [.get, .head]
    static let agentMethods: [HTTPRequest.Method] = [.get, .head, .post]
    static let documentMethods: [HTTPRequest.Method] = [.get, .head]

    /// The methods Flue serves on `path` (relative to the mount prefix, no query), or `nil` when
    /// it is not one of Flue's paths.
    static func allowedMethods(path: String) -> [HTTPRequest.Method]? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        switch (segments.first, segments.count) {
        case ("workflows"?, 2): return workflowMethods
        case ("runs"?, 2): return runMethods
        case ("agents"?, 3): return agentMethods
        case ("runs"?, 3) where segments.last == "cancel": return [.post]
        case ("agents"?, 4) where segments.last == "abort": return [.post]
        case ("agents"?, 4) where segments.last == "submissions": return [.get, .head]
        case ("agents"?, 4) where segments.last == "approvals": return [.get, .head]
        case ("agents"?, 5) where segments.dropLast().last == "approvals": return [.post]
        case ("agents"?, 5) where segments.dropLast().last == "submissions": return [.get, .head]
        case ("agents"?, 6) where segments.last == "cancel" && segments.dropLast(2).last == "submissions": return [.post]
        case ("openapi.json"?, 1): return documentMethods
        default: return nil
        }
    }

    /// Run ids as this server issues them (`run_` and a ULID) and as applications may choose
    /// them: 1 to 256 URL-safe characters. Anything else (a NUL byte after decoding, say) is an
    /// unknown run before any store sees it.
    static func isValidRunId(_ id: String) -> Bool { AgentAddress.isURLSafeId(id) }
}
