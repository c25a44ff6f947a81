import Foundation
import Hummingbird

/// Establishes who sent a request.
///
/// Return `nil` when the request carries no credentials this authenticator reads (the request is
/// answered `401` with ``challenge``); throw ``AuthenticationFailure`` when credentials are present but not valid
/// (also `401`, with RFC 6750's `error="invalid_token"`). Other errors are server faults (`500`),
/// or `503` for an unreachable key server (``AuthenticationFailure/unavailable(_:)``).
public protocol RequestAuthenticator: Sendable {
    func authenticate(_ request: Request) async throws -> Principal?
    /// The `WWW-Authenticate` challenge sent with a `401` (RFC 9110 §11.6.1), e.g. `Bearer realm="flue"`.
    var challenge: String { get }
}

/// Why credentials were refused. The reason goes to the client in the `401` envelope's details and
/// the challenge's `error_description`, so it never echoes the credential itself.
public enum AuthenticationFailure: Error, Sendable, Equatable {
    /// Credentials were present and wrong: unknown token, bad signature, expired, wrong audience….
    case invalid(String)
    /// The keys to check them could not be fetched (a JWKS endpoint down): `503`, try again.
    case unavailable(String)
}

extension RequestAuthenticator {
    /// `Bearer realm="flue"`, the challenge of bearer credentials (RFC 6750 §3).
    public var challenge: String { #"Bearer realm="flue""# }
}

extension Request {
    /// The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1; the scheme name is
    /// case-insensitive, RFC 9110 §11.1), or `nil` when there is none.
    public var bearerToken: String? {
        guard let header = headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}
