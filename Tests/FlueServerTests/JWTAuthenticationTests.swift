import AsyncHTTPClient
import CryptoExtras
import FlueAuth
import FlueRuntime
import FlueServer
import FlueTestSupport
import Foundation
import Hummingbird
import JWTKit
import NIOCore
import Synchronization
import Testing

/// A JWKS endpoint on a real socket whose key set the test replaces (key rotation), counting fetches.
final class JWKSServer: Sendable {
    private let document = Mutex<String>(#"{"keys":[]}"#)
    private let fetchCount = Atomic<Int>(0)
    private let task: Task<Void, any Error>
    let url: String

    var fetches: Int { fetchCount.load(ordering: .relaxed) }

    func serve(_ keys: [JSONValue]) {
        document.withLock { $0 = JSONValue.object(["keys": .array(keys)]).jsonString }
    }

    private init(port: Int, task: Task<Void, any Error>) {
        self.url = "http://127.0.0.1:\(port)/.well-known/jwks.json"
        self.task = task
    }

    static func start() async throws -> JWKSServer {
        let holder = Mutex<JWKSServer?>(nil)
        let router = Router()
        router.get("/.well-known/jwks.json") { _, _ -> Response in
            guard let server = holder.withLock({ $0 }) else { return Response(status: .serviceUnavailable) }
            server.fetchCount.add(1, ordering: .relaxed)
            let body = server.document.withLock { $0 }
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            })
        let task = Task { try await app.runService() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw TestFailure() }
        let server = JWKSServer(port: port, task: task)
        holder.withLock { $0 = server }
        return server
    }

    func stop() async {
        task.cancel()
        _ = try? await task.value
    }
}

/// The claims a test token carries.
struct TestClaims: JWTPayload {
    var sub: SubjectClaim?
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var iss: IssuerClaim?
    var aud: AudienceClaim?
    var team: String?

    init(
        sub: String? = "alice", expiresIn: TimeInterval? = 300, notBefore: Date? = nil, iss: String? = "https://issuer.test",
        aud: [String]? = ["flue-api"], team: String? = "blue"
    ) {
        self.sub = sub.map(SubjectClaim.init(value:))
        self.exp = expiresIn.map { ExpirationClaim(value: Date().addingTimeInterval($0)) }
        self.nbf = notBefore.map(NotBeforeClaim.init(value:))
        self.iss = iss.map(IssuerClaim.init(value:))
        self.aud = aud.map(AudienceClaim.init(value:))
        self.team = team
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// An ES256 or RS256 signing key and its public JWK.
struct TestSigningKey {
    let kid: String
    let signer: JWTKeyCollection
    let jwk: JSONValue

    static func es256(_ kid: String) async -> TestSigningKey {
        let key = ES256PrivateKey()
        let (x, y) = key.parameters!
        let signer = await JWTKeyCollection().add(ecdsa: key, kid: JWKIdentifier(string: kid))
        return TestSigningKey(
            kid: kid, signer: signer,
            jwk: ["kty": "EC", "crv": "P-256", "x": .string(x), "y": .string(y), "kid": .string(kid), "alg": "ES256", "use": "sig"])
    }

    static func rs256(_ kid: String) async throws -> TestSigningKey {
        let key = try Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
        let (modulus, exponent) = try key.publicKey.getKeyPrimitives()
        let signer = await JWTKeyCollection().add(rsa: key, digestAlgorithm: .sha256, kid: JWKIdentifier(string: kid))
        return TestSigningKey(
            kid: kid, signer: signer,
            jwk: [
                "kty": "RSA", "n": .string(base64URL(modulus)), "e": .string(base64URL(exponent)), "kid": .string(kid),
                "alg": "RS256", "use": "sig",
            ])
    }

    func token(_ claims: TestClaims = TestClaims()) async throws -> String {
        try await signer.sign(claims, kid: JWKIdentifier(string: kid))
    }
}

func base64URL(_ data: Data) -> String {
    data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

/// JWT authentication against a JWKS server the test runs, and with a shared secret (issue 19).
@Suite(.serialized) struct JWTAuthenticationTests {
    let configuration = JWTAuthenticator.Configuration(issuer: "https://issuer.test", audience: "flue-api")

    /// The refusal reason, or `nil` when the token was accepted.
    func refusal(_ authenticator: JWTAuthenticator, _ token: String) async -> String? {
        do {
            _ = try await authenticator.principal(token)
            return nil
        } catch let AuthenticationFailure.invalid(reason) {
            return reason
        } catch {
            return "\(error)"
        }
    }

    @Test func jwksKeysVerifyES256AndRS256TokensAndRotationFetchesTheNewKeyOnce() async throws {
        let jwks = try await JWKSServer.start()
        let ec1 = await TestSigningKey.es256("ec-1")
        let rsa = try await TestSigningKey.rs256("rsa-1")
        // The RSA key names no algorithm (as some identity providers publish them): it is pinned to
        // RS256. A symmetric key and an encryption key in the set are skipped without breaking it.
        var rsaWithoutAlg = try #require(rsa.jwk.objectValue)
        rsaWithoutAlg["alg"] = nil
        let encryption: JSONValue = ["kty": "RSA", "use": "enc", "kid": "enc-1", "alg": "RSA-OAEP-256", "n": rsa.jwk["n"]!, "e": "AQAB"]
        jwks.serve([ec1.jwk, .object(rsaWithoutAlg), ["kty": "oct", "kid": "sym", "k": "c2VjcmV0"], encryption])
        let authenticator = try JWTAuthenticator(
            // Long enough that a starved machine's sequential requests stay within one interval.
            jwksURL: jwks.url, configuration: configuration, minimumRefetchInterval: .seconds(2))
        try await withTeardown {
            let principal = try await authenticator.principal(try await ec1.token())
            #expect(principal.subject == "alice")
            #expect(principal.claims["team"] == "blue", "the principal carries the verified claims")
            #expect(try await authenticator.principal(try await rsa.token(TestClaims(sub: "bob"))).subject == "bob")
            #expect(jwks.fetches == 1, "the key set is cached")
            // The token's alg must be the key's: no `none`, no other algorithm for a known key
            // (which JWTKit would otherwise build a verifier for when the key names none).
            for algorithm in ["none", "RS512", "PS256", "HS256", "ES256"] {
                let forged = try await Self.withHeader(["alg": .string(algorithm), "kid": "rsa-1", "typ": "JWT"], rsa.token())
                #expect(await refusal(authenticator, forged) == "The token's algorithm is not accepted.", "\(algorithm)")
            }
            #expect(try await authenticator.principal(try await rsa.token()).subject == "alice", "RS256 still verifies")
            let critical = try await Self.withHeader(["alg": "RS256", "kid": "rsa-1", "crit": ["exp"], "exp": 1], rsa.token())
            #expect(await refusal(authenticator, critical) == "The token requires header extensions (crit) this server does not support.")
            let noKid = try await Self.withHeader(["alg": "ES256", "typ": "JWT"], ec1.token())
            #expect(await refusal(authenticator, noKid) == "The token names no key id (kid).")

            // Rotation: the issuer now signs with ec-2 only.
            let ec2 = await TestSigningKey.es256("ec-2")
            jwks.serve([ec2.jwk])
            try await Task.sleep(for: .milliseconds(2100))
            #expect(try await authenticator.principal(try await ec2.token(TestClaims(sub: "carol"))).subject == "carol")
            #expect(jwks.fetches == 2, "an unknown kid fetched the key set again")
            #expect(await refusal(authenticator, try await ec1.token()) != nil, "the retired key no longer verifies")
            // Made-up key ids cannot make the server fetch more than once per interval.
            let stranger = await TestSigningKey.es256("made-up")
            for _ in 0..<5 {
                #expect(await refusal(authenticator, try await stranger.token()) == "The token's key id is not one of the issuer's keys.")
            }
            #expect(jwks.fetches <= 3, "made-up kids do not each fetch the key set: \(jwks.fetches) fetches")

            // Claims.
            #expect(await refusal(authenticator, try await ec2.token(TestClaims(expiresIn: -120))) == "The token has expired.")
            #expect(await refusal(authenticator, try await ec2.token(TestClaims(expiresIn: -30))) == nil, "within the 60 s leeway")
            #expect(await refusal(authenticator, try await ec2.token(TestClaims(expiresIn: nil))) == "The token has no expiry (exp).")
            #expect(
                await refusal(authenticator, try await ec2.token(TestClaims(notBefore: Date().addingTimeInterval(600))))
                    == "The token is not valid yet (nbf).")
            #expect(
                await refusal(authenticator, try await ec2.token(TestClaims(aud: ["another-api"])))
                    == "The token's audience (aud) does not include this server.")
            #expect(await refusal(authenticator, try await ec2.token(TestClaims(aud: nil))) != nil)
            #expect(
                await refusal(authenticator, try await ec2.token(TestClaims(iss: "https://evil.test")))
                    == "The token's issuer (iss) is not accepted.")
            #expect(await refusal(authenticator, try await ec2.token(TestClaims(sub: nil))) == "The token has no subject (sub).")
            // A token signed by someone else under a known kid.
            let forger = await TestSigningKey.es256("ec-2")
            #expect(await refusal(authenticator, try await forger.token()) == "The token's signature does not verify.")
            #expect(await refusal(authenticator, "not.a.jwt") == "The token is not a well-formed JWT.")
            let unsigned = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."
            #expect(await refusal(authenticator, unsigned) == "The token names no key id (kid).", "alg none, no kid")
            // Many requests at once with made-up key ids share one fetch.
            let before = jwks.fetches
            try await Task.sleep(for: .milliseconds(2100))
            let strangers = try await stranger.token()
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<20 { group.addTask { _ = await self.refusal(authenticator, strangers) } }
            }
            #expect(jwks.fetches - before == 1, "\(jwks.fetches - before) fetches for 20 concurrent unknown kids")
            #expect(await refusal(authenticator, "") == "The token is not a well-formed JWT.")
        } teardown: {
            await jwks.stop()
        }
    }

    @Test func aJWKSEndpointThatIsDownAnswers503AndTheKeysAlreadyHeldKeepWorking() async throws {
        let jwks = try await JWKSServer.start()
        let key = await TestSigningKey.es256("k")
        let down = try JWTAuthenticator(
            jwksURL: "http://127.0.0.1:1/jwks.json", configuration: configuration, fetchTimeout: .seconds(1))
        do {
            _ = try await down.principal(try await key.token())
            Issue.record("accepted without keys")
        } catch let failure as AuthenticationFailure {
            guard case .unavailable = failure else { Issue.record("\(failure)"); return }
        }
        // Over HTTP: 503 with the envelope, not 401 (the credentials may well be valid).
        let f = try await ServerFixture.start(access: AccessPolicy(authenticator: down))
        try await f.scoped {
            let reply = try await f.get("/openapi.json", headers: [("authorization", "Bearer \(try await key.token())")])
            #expect(reply.status == 503 && reply.errorType == "service_unavailable", "\(reply.text)")
        }
        jwks.serve([key.jwk])
        let authenticator = try JWTAuthenticator(
            jwksURL: jwks.url, configuration: configuration, refreshInterval: .milliseconds(100), fetchTimeout: .seconds(1))
        #expect(try await authenticator.principal(try await key.token()).subject == "alice")
        await jwks.stop()
        try await Task.sleep(for: .milliseconds(150))
        #expect(try await authenticator.principal(try await key.token()).subject == "alice", "a failed refresh keeps the keys")
    }

    /// `token` with its header replaced (signature kept).
    static func withHeader(_ header: JSONValue, _ token: String) -> String {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        return base64URL(header.jsonData()) + "." + parts[1] + "." + parts[2]
    }

    @Test func aJWKSAuthenticatorNeedsAnIssuerAnAudienceAndHTTPS() async throws {
        for (url, configuration) in [
            ("https://idp.example/jwks.json", JWTAuthenticator.Configuration(issuer: "https://idp.example")),
            ("https://idp.example/jwks.json", JWTAuthenticator.Configuration(audience: "flue-api")),
            ("http://idp.example/jwks.json", configuration),
            ("ftp://idp.example/jwks.json", configuration),
        ] {
            #expect(throws: JWTConfigurationError.self, "\(url)") { try JWTAuthenticator(jwksURL: url, configuration: configuration) }
        }
        _ = try JWTAuthenticator(jwksURL: "https://idp.example/jwks.json", configuration: configuration)
        _ = try JWTAuthenticator(jwksURL: "http://127.0.0.1:9/jwks.json", configuration: configuration)
    }

    @Test func hs256TokensWorkOverHTTPAndOwnershipFollowsTheSubject() async throws {
        let secret = String(repeating: "k", count: 40)
        let access = AccessPolicy(
            authenticator: await JWTAuthenticator(hmacSecret: secret, configuration: configuration), ownership: .subjectScoped)
        let signer = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        let wrongSigner = await JWTKeyCollection().add(hmac: HMACKey(from: String(repeating: "x", count: 40)), digestAlgorithm: .sha256)
        let f = try await ServerFixture.start(access: access)
        try await f.scoped {
            await f.model.enqueue(.text("hi dana"))
            let dana = try await signer.sign(TestClaims(sub: "dana"))
            let reply = try await f.post(
                "/agents/assistant/dana?wait=result", #"{"message":"hello"}"#, headers: [("authorization", "Bearer \(dana)")])
            #expect(reply.status == 200, "\(reply.text)")
            #expect(reply.json?["result"]?["text"] == "hi dana")
            let erin = try await signer.sign(TestClaims(sub: "erin"))
            let denied = try await f.get("/agents/assistant/dana?offset=-1", headers: [("authorization", "Bearer \(erin)")])
            #expect(denied.status == 404 && denied.errorType == "stream_not_found")
            let forged = try await wrongSigner.sign(TestClaims(sub: "dana"))
            let refused = try await f.get("/agents/assistant/dana?offset=-1", headers: [("authorization", "Bearer \(forged)")])
            #expect(refused.status == 401)
            #expect(refused.header("WWW-Authenticate")?.contains(#"error="invalid_token""#) == true)
            let none = Self.withHeader(["alg": "none", "typ": "JWT"], try await signer.sign(TestClaims(sub: "dana")))
            let unsigned = try await f.get("/agents/assistant/dana?offset=-1", headers: [("authorization", "Bearer \(none)")])
            #expect(unsigned.status == 401 && unsigned.json?["error"]?["details"] == "The token's algorithm is not accepted.")
            let expired = try await signer.sign(TestClaims(sub: "dana", expiresIn: -3600))
            let late = try await f.get("/agents/assistant/dana?offset=-1", headers: [("authorization", "Bearer \(expired)")])
            #expect(late.status == 401 && late.json?["error"]?["details"] == "The token has expired.")
        }
    }
}
