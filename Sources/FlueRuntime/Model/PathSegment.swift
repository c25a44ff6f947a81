import Foundation

/// Names and ids as one URL path segment (`/agents/<name>/<id>`), written the same way by the
/// server (the URLs it returns) and by clients (the URLs they call).
public enum PathSegment {
    /// `value` with everything but RFC 3986 unreserved characters and `:@+` percent-encoded, so
    /// `/`, `%`, `?` and `#` never change the URL's shape.
    public static func encoded(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }

    private static let allowed: CharacterSet = {
        var set = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        set.insert(charactersIn: "-._~:@+")
        return set
    }()
}
