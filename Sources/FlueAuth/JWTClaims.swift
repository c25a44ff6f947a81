import JWTKit

/// The registered claims Flue checks (RFC 7519 §4.1). Signature and algorithm are checked by
/// JWTKit; the time and audience checks need the authenticator's configuration, so they run in
/// ``JWTAuthenticator`` after decoding.
struct JWTClaims: JWTPayload {
    var sub: SubjectClaim?
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var iss: IssuerClaim?
    var aud: AudienceClaim?

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
