import Foundation

/// Generates sortable, prefixed identifiers (`op_…`, `turn_…`, `run_…`): 48 bits of
/// milliseconds then 80 random bits, Crockford base32 like a ULID.
public enum FlueID {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    /// A new identifier with the given prefix, e.g. `FlueID.make("run")` → `run_01J…`.
    public static func make(_ prefix: String, now: Date = Date()) -> String {
        var generator = SystemRandomNumberGenerator()
        let millis = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        var chars: [Character] = []
        chars.reserveCapacity(26)
        for shift in stride(from: 45, through: 0, by: -5) {
            chars.append(alphabet[Int((millis >> UInt64(shift)) & 31)])
        }
        for _ in 0..<16 {
            chars.append(alphabet[Int(generator.next() & 31)])
        }
        return prefix + "_" + String(chars)
    }
}
