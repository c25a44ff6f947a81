import Crypto
import FlueServer
import Foundation
import Hummingbird

/// Static bearer tokens: `Authorization: Bearer <token>` where the token is one of a configured
/// set, each standing for a subject. Several tokens for one subject let a deployment rotate them
/// (add the new one, move clients, remove the old one).
///
/// Tokens are compared in constant time: the SHA-256 of the presented token is compared with
/// every configured token's SHA-256 without stopping at the first match or the first differing
/// byte, so neither the time taken nor its variance tells which token, or how much of one, matched.
public struct BearerTokenAuthenticator: RequestAuthenticator {
    private let digests: [(digest: [UInt8], subject: String)]

    /// The subjects the tokens stand for.
    public var subjects: Set<String> { Set(digests.map(\.subject)) }

    /// The shortest token accepted from configuration, in characters.
    public static let minimumTokenLength = 16

    /// `tokens` maps each token to the subject it stands for.
    public init(tokens: [String: String]) {
        self.digests = tokens.map { (Array(SHA256.hash(data: Data($0.key.utf8))), $0.value) }
    }

    /// Every token stands for `subject` (`API_TOKENS`: one team, rotated tokens).
    public init(tokens: [String], subject: String = "api") {
        self.init(tokens: Dictionary(tokens.map { ($0, subject) }, uniquingKeysWith: { first, _ in first }))
    }

    public func authenticate(_ request: Request) async throws -> Principal? {
        guard let token = request.bearerToken else { return nil }
        guard let subject = subject(for: token) else { throw AuthenticationFailure.invalid("The token is not valid.") }
        return Principal(subject: subject)
    }

    /// The subject of `token`, compared in constant time against all tokens.
    func subject(for token: String) -> String? {
        let presented = Array(SHA256.hash(data: Data(token.utf8)))
        var found: String?
        for entry in digests {
            var difference: UInt8 = 0
            for index in 0..<presented.count { difference |= presented[index] ^ entry.digest[index] }
            if difference == 0 { found = entry.subject }
        }
        return found
    }
}
