import FlueRuntime

/// Who sent a request, as an authenticator established it: a subject (the JWT `sub`, or the name
/// a static token stands for) and the claims it was granted with.
public struct Principal: Sendable, Hashable {
    /// The stable identifier ownership and rate limits key on.
    public var subject: String
    /// The verified claims (a JWT's payload; empty for a static token).
    public var claims: [String: JSONValue]

    public init(subject: String, claims: [String: JSONValue] = [:]) {
        self.subject = subject
        self.claims = claims
    }

    /// The principal of the request being handled by a protected ``FlueRoutes`` (`nil` where no
    /// ``AccessPolicy`` is mounted). Set for the whole handler, guards included.
    @TaskLocal public static var current: Principal?
}
