import FlueServer
import Foundation
import Logging

extension AccessPolicy {
    /// The access policy a deployment configures, or `nil` when it configures none (routes open).
    ///
    /// | variable | meaning |
    /// | --- | --- |
    /// | `API_TOKENS` | static bearer tokens, comma-separated (several for rotation), each at least 16 characters; all stand for the subject `api` |
    /// | `JWT_SECRET` | HS256 shared secret (at least 32 bytes) |
    /// | `JWT_JWKS_URL` | https JWKS URL for RS256 / ES256 tokens (not with `JWT_SECRET`); needs `JWT_ISSUER` and `JWT_AUDIENCE` |
    /// | `JWT_ISSUER`, `JWT_AUDIENCE` | required `iss`, and a value `aud` must contain |
    /// | `OWNERSHIP` | `shared` (every principal sees everything) or `subject` (``Ownership/subjectScoped``); default `subject` with JWT, else `shared` |
    /// | `RATE_LIMIT_PER_MINUTE` | requests per minute per principal, per replica |
    /// | `MAX_CONCURRENT_SUBMISSIONS` | unsettled agent submissions per principal admitted through one replica |
    ///
    /// Throws ``ConfigurationError`` naming the variable at fault.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger = Logger(label: "flue.auth")
    ) async throws -> AccessPolicy? {
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else { return nil }
            return text
        }
        // Set but blank is a mistake (a secret that never got its value), not a wish for open routes.
        for name in ["API_TOKENS", "JWT_SECRET", "JWT_JWKS_URL"] where environment[name] != nil && value(name) == nil {
            throw ConfigurationError(
                variable: name, message: "\(name) is set but empty: give it a value, or unset it to serve open routes")
        }
        var tokens: BearerTokenAuthenticator?
        var jwt: JWTAuthenticator?
        if let raw = value("API_TOKENS") {
            let values = raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard !values.isEmpty, values.allSatisfy({ $0.count >= BearerTokenAuthenticator.minimumTokenLength }) else {
                throw ConfigurationError(
                    variable: "API_TOKENS",
                    message: "API_TOKENS must be comma-separated tokens of at least \(BearerTokenAuthenticator.minimumTokenLength) "
                        + "characters each (e.g. from `openssl rand -hex 32`)")
            }
            guard values.allSatisfy({ $0.unicodeScalars.allSatisfy { (0x21...0x7E).contains($0.value) } }) else {
                throw ConfigurationError(variable: "API_TOKENS", message: "API_TOKENS tokens must be visible ASCII characters")
            }
            tokens = BearerTokenAuthenticator(tokens: values)
        }
        let claims = JWTAuthenticator.Configuration(issuer: value("JWT_ISSUER"), audience: value("JWT_AUDIENCE"))
        let secret = value("JWT_SECRET")
        let jwks = value("JWT_JWKS_URL")
        if secret != nil, jwks != nil {
            throw ConfigurationError(variable: "JWT_SECRET", message: "set JWT_SECRET or JWT_JWKS_URL, not both")
        }
        if let secret {
            guard secret.utf8.count >= 32 else {
                throw ConfigurationError(variable: "JWT_SECRET", message: "JWT_SECRET must be at least 32 bytes (RFC 7518 §3.2)")
            }
            jwt = await JWTAuthenticator(hmacSecret: secret, configuration: claims)
        }
        if let jwks {
            for name in ["JWT_ISSUER", "JWT_AUDIENCE"] where value(name) == nil {
                throw ConfigurationError(
                    variable: name,
                    message: "JWT_JWKS_URL needs \(name): a public key set signs tokens for other applications too")
            }
            do {
                jwt = try JWTAuthenticator(jwksURL: jwks, configuration: claims, logger: logger)
            } catch let error as JWTConfigurationError {
                throw ConfigurationError(variable: "JWT_JWKS_URL", message: "JWT_JWKS_URL: \(error)")
            }
        }
        let usesJWT = secret != nil || jwks != nil
        for name in ["JWT_ISSUER", "JWT_AUDIENCE"] where value(name) != nil && !usesJWT {
            throw ConfigurationError(variable: name, message: "\(name) is set but neither JWT_SECRET nor JWT_JWKS_URL is")
        }
        let ownership: Ownership
        switch value("OWNERSHIP") {
        case nil: ownership = usesJWT ? .subjectScoped : .shared
        case "shared": ownership = .shared
        case "subject": ownership = .subjectScoped
        case let other?:
            throw ConfigurationError(variable: "OWNERSHIP", message: "OWNERSHIP must be shared or subject, got \"\(other)\"")
        }
        let limits = PrincipalLimits(
            requestsPerMinute: try positive("RATE_LIMIT_PER_MINUTE", value("RATE_LIMIT_PER_MINUTE")),
            concurrentSubmissions: try positive("MAX_CONCURRENT_SUBMISSIONS", value("MAX_CONCURRENT_SUBMISSIONS")))
        let authenticator: any RequestAuthenticator
        switch (tokens, jwt) {
        case (let tokens?, let jwt?): authenticator = TokenOrJWTAuthenticator(tokens: tokens, jwt: jwt)
        case (let tokens?, nil): authenticator = tokens
        case (nil, let jwt?): authenticator = jwt
        case (nil, nil):
            for name in ["OWNERSHIP", "RATE_LIMIT_PER_MINUTE", "MAX_CONCURRENT_SUBMISSIONS"] where value(name) != nil {
                throw ConfigurationError(
                    variable: name, message: "\(name) needs an authenticator: set API_TOKENS, JWT_SECRET or JWT_JWKS_URL")
            }
            return nil
        }
        return AccessPolicy(authenticator: authenticator, ownership: ownership, limits: limits)
    }

    private static func positive(_ name: String, _ text: String?) throws -> Int? {
        guard let text else { return nil }
        guard let number = Int(text), number >= 1, number <= 1_000_000 else {
            throw ConfigurationError(variable: name, message: "\(name) must be a whole number from 1 to 1000000, got \"\(text)\"")
        }
        return number
    }
}
