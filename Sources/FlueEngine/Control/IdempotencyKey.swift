import Crypto
import Foundation

/// `Idempotency-Key` values (the header of the IETF draft "The Idempotency-Key HTTP Header
/// Field", also what Stripe and Flue 2.x accept): which keys are valid, and the id a key stands for.
public enum IdempotencyKey {
    /// The longest accepted key, in characters.
    public static let maxLength = 255

    /// 1–255 visible ASCII characters (`!` through `~`, no spaces).
    public static func isValid(_ key: String) -> Bool {
        !key.isEmpty && key.utf8.count <= maxLength && key.utf8.allSatisfy { (0x21...0x7E).contains($0) }
    }

    /// `<prefix>_k` and 32 hex digits of SHA-256 over the scope (agent and instance, or the
    /// workflow name) and the key: the same key in the same scope always names the same
    /// submission or run, and never one in another scope.
    static func derivedId(_ prefix: String, scope: [String], key: String) -> String {
        var bytes = Data()
        for part in scope + [key] {
            bytes.append(contentsOf: Array(part.utf8))
            bytes.append(0)
        }
        let digest = SHA256.hash(data: bytes)
        return prefix + "_k" + digest.prefix(16).map { String(format: "%02x", $0) }.joined()
    }
}
