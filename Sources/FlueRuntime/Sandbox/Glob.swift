/// Shell-style patterns: `*` (any run of characters except `/`), `**` (any run, `/` included:
/// any depth), `?` (one character), `[abc]`; everything else literal.
public enum Glob {
    /// Whether `text` matches `pattern` as a whole.
    public static func matches(_ text: String, _ pattern: String) -> Bool {
        guard let regex = try? Regex("^" + regexSource(pattern) + "$") else { return text == pattern }
        return (try? regex.wholeMatch(in: text)) != nil
    }

    static func regexSource(_ pattern: String) -> String {
        var source = ""
        var chars = Array(pattern)[...]
        while let c = chars.popFirst() {
            switch c {
            case "*":
                if chars.first == "*" {
                    chars.removeFirst()
                    if chars.first == "/" {
                        chars.removeFirst()
                        source += "(?:.*/)?"  // `**/` : zero or more directories
                    } else {
                        source += ".*"
                    }
                } else {
                    source += "[^/]*"
                }
            case "?": source += "[^/]"
            case "[":
                if let close = chars.firstIndex(of: "]") {
                    var set = String(chars[..<close]).replacingOccurrences(of: "\\", with: "\\\\")
                    if set.hasPrefix("!") { set = "^" + set.dropFirst() }  // `[!a]` is the shell's negation
                    source += "[" + set + "]"
                    chars = chars[chars.index(after: close)...]
                } else {
                    source += "\\["
                }
            default:
                source += ".^$|+(){}\\".contains(c) ? "\\" + String(c) : String(c)
            }
        }
        return source
    }
}
