import FlueServer
import Hummingbird
import HummingbirdAuth

/// The same authenticators on an application's own routes, as a HummingbirdAuth
/// `AuthenticatorMiddleware`: it sets `context.identity` to the ``Principal`` when the request
/// carries valid credentials and passes the request on either way, so pair it with
/// HummingbirdAuth's `IsAuthenticatedMiddleware` where credentials are required. When the keys
/// to check credentials cannot be fetched it answers `503` instead.
///
/// ```swift
/// let router = Router(context: BasicAuthRequestContext<Principal>.self)
/// router.group("admin")
///     .add(middleware: PrincipalAuthenticatorMiddleware(authenticator: access.authenticator))
///     .add(middleware: IsAuthenticatedMiddleware())
/// ```
public struct PrincipalAuthenticatorMiddleware<Context: AuthRequestContext<Principal>>: AuthenticatorMiddleware {
    public typealias Identity = Principal
    public let authenticator: any RequestAuthenticator

    public init(authenticator: any RequestAuthenticator) {
        self.authenticator = authenticator
    }

    public func authenticate(request: Request, context: Context) async throws -> Principal? {
        do {
            return try await authenticator.authenticate(request)
        } catch AuthenticationFailure.unavailable(let reason) {
            throw HTTPError(.serviceUnavailable, message: reason)
        } catch is AuthenticationFailure {
            return nil
        }
    }
}
