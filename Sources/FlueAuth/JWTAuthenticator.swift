import AsyncHTTPClient
import FlueRuntime
import FlueServer
import Foundation
import Hummingbird
import JWTKit
import Logging

/// JSON Web Tokens (RFC 7519) sent as `Authorization: Bearer <jwt>`, verified with JWTKit:
/// HS256 with a shared secret, or RS256 / ES256 with keys from a JWKS URL, cached and fetched
/// again when a token names an unknown `kid`.
///
/// The token's `alg` must be the key's: `HS256` for the secret; for a JWKS key its own `alg` (one
/// of ``Configuration/algorithms``). So `none`, and a token that picks another algorithm for a
/// known key, are refused before any signature check.
///
/// After the signature: `exp` must be present (unless ``Configuration/requireExpiration`` is
/// off) and in the future, `nbf` (if present) in the past, each within ``Configuration/leeway``;
/// `iss` must equal ``Configuration/issuer`` and `aud` contain ``Configuration/audience`` when
/// those are set. The principal's subject is the `sub` claim (required); its claims are the
/// whole verified payload.
public struct JWTAuthenticator: RequestAuthenticator {
    public struct Configuration: Sendable {
        /// The required `iss`, or `nil` to accept any.
        public var issuer: String?
        /// A value `aud` must contain, or `nil` to accept any.
        public var audience: String?
        /// Clock skew tolerated on `exp` and `nbf`.
        public var leeway: Duration
        /// Whether a token without `exp` is refused.
        public var requireExpiration: Bool
        /// The JWS algorithms JWKS keys may use (RFC 7518 names).
        public var algorithms: Set<String>

        public init(
            issuer: String? = nil, audience: String? = nil, leeway: Duration = .seconds(60), requireExpiration: Bool = true,
            algorithms: Set<String> = ["RS256", "ES256"]
        ) {
            self.issuer = issuer
            self.audience = audience
            self.leeway = leeway
            self.requireExpiration = requireExpiration
            self.algorithms = algorithms
        }
    }

    private enum Keys: Sendable {
        case fixed(JWTKeyCollection)
        case jwks(JWKSKeySource)
    }

    private let keys: Keys
    public let configuration: Configuration

    /// HS256 with a shared secret (at least 32 bytes: RFC 7518 §3.2 asks for a key as long as the hash).
    public init(hmacSecret: String, configuration: Configuration = .init()) async {
        let collection = JWTKeyCollection()
        await collection.add(hmac: HMACKey(from: hmacSecret), digestAlgorithm: .sha256)
        self.keys = .fixed(collection)
        self.configuration = configuration
    }

    /// Keys from a JWKS document at `jwksURL`, fetched on the first request, refreshed every
    /// `refreshInterval`, and fetched again (at most every `minimumRefetchInterval`) when a token
    /// names a key id not in the cache.
    ///
    /// Throws ``JWTConfigurationError`` unless `configuration` names both an issuer and an
    /// audience (a public key set such as a large identity provider's signs tokens for every
    /// application it serves: without them, a token meant for another application would be
    /// accepted), and unless `jwksURL` is `https` (plain `http` only to a loopback host).
    public init(
        jwksURL: String, configuration: Configuration, httpClient: HTTPClient = .shared,
        refreshInterval: Duration = .seconds(600), minimumRefetchInterval: Duration = .seconds(5),
        fetchTimeout: Duration = .seconds(10), logger: Logger = Logger(label: "flue.auth")
    ) throws {
        guard configuration.issuer != nil, configuration.audience != nil else {
            throw JWTConfigurationError("a JWKS authenticator needs an issuer and an audience to check (JWT_ISSUER, JWT_AUDIENCE)")
        }
        guard let url = URL(string: jwksURL), let host = url.host, !host.isEmpty,
            url.scheme?.lowercased() == "https"
                || (url.scheme?.lowercased() == "http" && ["127.0.0.1", "localhost", "::1"].contains(host))
        else {
            throw JWTConfigurationError("the JWKS URL must be https (http only to a loopback host), got \"\(jwksURL)\"")
        }
        self.keys = .jwks(
            JWKSKeySource(
                url: jwksURL, httpClient: httpClient, refreshInterval: refreshInterval,
                minimumRefetchInterval: minimumRefetchInterval, fetchTimeout: fetchTimeout,
                algorithms: configuration.algorithms, logger: logger))
        self.configuration = configuration
    }

    public func authenticate(_ request: Request) async throws -> Principal? {
        guard let token = request.bearerToken else { return nil }
        return try await principal(token)
    }

    /// Verifies `token` and returns its principal. Throws ``AuthenticationFailure``.
    public func principal(_ token: String, now: Date = Date()) async throws -> Principal {
        let claims = try await verifiedClaims(token)
        try check(claims, now: now)
        guard let subject = claims.sub?.value, !subject.isEmpty else {
            throw AuthenticationFailure.invalid("The token has no subject (sub).")
        }
        return Principal(subject: subject, claims: Self.payload(of: token))
    }

    private func verifiedClaims(_ token: String) async throws -> JWTClaims {
        guard let header = Self.header(of: token), let algorithm = header["alg"]?.stringValue else {
            throw AuthenticationFailure.invalid("The token is not a well-formed JWT.")
        }
        // RFC 7515 §4.1.11: extensions listed as critical must be understood; this server knows none.
        guard header["crit"] == nil else {
            throw AuthenticationFailure.invalid("The token requires header extensions (crit) this server does not support.")
        }
        switch keys {
        case .fixed(let collection):
            guard algorithm == "HS256" else { throw AuthenticationFailure.invalid("The token's algorithm is not accepted.") }
            return try await Self.verify(token, with: collection)
        case .jwks(let source):
            // Tokens verified by a key set must name their key, and use that key's algorithm.
            guard let keyId = header["kid"]?.stringValue else {
                throw AuthenticationFailure.invalid("The token names no key id (kid).")
            }
            var keys = try await source.current()
            if keys.algorithms[keyId] == nil {
                guard let refreshed = try await source.refetchForUnknownKeyId(), refreshed.algorithms[keyId] != nil else {
                    throw AuthenticationFailure.invalid("The token's key id is not one of the issuer's keys.")
                }
                keys = refreshed
            }
            guard keys.algorithms[keyId] == algorithm else {
                throw AuthenticationFailure.invalid("The token's algorithm is not accepted.")
            }
            return try await Self.verify(token, with: keys.collection)
        }
    }

    private static func verify(_ token: String, with collection: JWTKeyCollection) async throws -> JWTClaims {
        do {
            return try await collection.verify(token, as: JWTClaims.self)
        } catch let error as JWTError {
            switch error.errorType {
            case .unknownKID: throw AuthenticationFailure.invalid("The token's key id is not known.")
            case .signatureVerificationFailed: throw AuthenticationFailure.invalid("The token's signature does not verify.")
            case .malformedToken, .invalidHeaderField, .invalidBool:
                throw AuthenticationFailure.invalid("The token is not a well-formed JWT.")
            case .missingKIDHeader: throw AuthenticationFailure.invalid("The token names no key id (kid).")
            case .unsupportedAlgorithm, .signingAlgorithmFailure:
                throw AuthenticationFailure.invalid("The token's algorithm is not accepted.")
            default: throw AuthenticationFailure.invalid("The token was refused.")
            }
        } catch {
            // Decoding failures (a claim of the wrong type) and anything else a token can cause.
            throw AuthenticationFailure.invalid("The token is not a well-formed JWT.")
        }
    }

    private func check(_ claims: JWTClaims, now: Date) throws {
        let leeway = configuration.leeway.timeInterval
        if let exp = claims.exp {
            guard now.addingTimeInterval(-leeway) < exp.value else { throw AuthenticationFailure.invalid("The token has expired.") }
        } else if configuration.requireExpiration {
            throw AuthenticationFailure.invalid("The token has no expiry (exp).")
        }
        if let nbf = claims.nbf, now.addingTimeInterval(leeway) < nbf.value {
            throw AuthenticationFailure.invalid("The token is not valid yet (nbf).")
        }
        if let issuer = configuration.issuer, claims.iss?.value != issuer {
            throw AuthenticationFailure.invalid("The token's issuer (iss) is not accepted.")
        }
        if let audience = configuration.audience, !(claims.aud?.value.contains(audience) ?? false) {
            throw AuthenticationFailure.invalid("The token's audience (aud) does not include this server.")
        }
    }

    /// Whether `token` has a JWT's shape: three dot-separated segments, the first a JSON object naming an `alg`.
    public static func isJWTShaped(_ token: String) -> Bool {
        header(of: token)?["alg"]?.stringValue != nil
    }

    /// The payload segment as JSON (already verified by the caller).
    static func payload(of token: String) -> [String: JSONValue] {
        segment(1, of: token)?.objectValue ?? [:]
    }

    /// The (unverified) header segment as JSON.
    static func header(of token: String) -> JSONValue? {
        segment(0, of: token)
    }

    private static func segment(_ index: Int, of token: String) -> JSONValue? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[index].utf8.count <= 65_536 else { return nil }
        var base64 = parts[index].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let json = try? JSONValue(parsing: data) else { return nil }
        return json
    }
}

/// A JWT authenticator that cannot be built as configured.
public struct JWTConfigurationError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
