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

/// The names of workflows, agents and tools: a letter, then letters, digits, `_` or `-`, 64
/// characters at most. They appear in URLs (`/workflows/<name>`, `/agents/<name>/<id>`) and in
/// provider tool lists, whose own rule this is.
public enum DefinitionName {
    /// The rule as a regular expression (as OpenAPI's `pattern` states it).
    public static let pattern = "^[A-Za-z][A-Za-z0-9_-]{0,63}$"

    public static func isValid(_ name: String) -> Bool {
        name.wholeMatch(of: /[A-Za-z][A-Za-z0-9_-]{0,63}/) != nil
    }

    /// The `invalid_definition` error for a bad `name` of `what` (`tool`, `workflow`, `agent`).
    static func check(_ name: String, of what: String) throws {
        guard isValid(name) else {
            throw FlueError(
                .invalidDefinition,
                "\(what) name \"\(name)\" must start with a letter and contain only letters, digits, _ and - (at most 64)")
        }
    }
}
