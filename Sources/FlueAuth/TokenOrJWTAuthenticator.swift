import FlueServer
import Hummingbird

/// Static tokens and JWTs on one deployment (service clients with a token, users with a JWT):
/// a bearer value with a JWT's shape goes to the JWT authenticator, any other to the tokens, so
/// each refusal names the right reason and a key-set outage answers `503`. A JWT whose subject
/// is one the static tokens stand for is refused: it would otherwise own the token clients' runs
/// and instances.
public struct TokenOrJWTAuthenticator: RequestAuthenticator {
    public let tokens: BearerTokenAuthenticator
    public let jwt: JWTAuthenticator

    public init(tokens: BearerTokenAuthenticator, jwt: JWTAuthenticator) {
        self.tokens = tokens
        self.jwt = jwt
    }

    public func authenticate(_ request: Request) async throws -> Principal? {
        guard let token = request.bearerToken else { return nil }
        guard JWTAuthenticator.isJWTShaped(token) else { return try await tokens.authenticate(request) }
        let principal = try await jwt.principal(token)
        guard !tokens.subjects.contains(principal.subject) else {
            throw AuthenticationFailure.invalid("The token's subject is reserved for static tokens.")
        }
        return principal
    }
}
