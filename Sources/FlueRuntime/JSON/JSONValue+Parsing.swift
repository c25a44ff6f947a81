import Foundation

extension JSONValue {
    /// Why `data` is not a JSON document, in the terms of the text a client sent: invalid UTF-8
    /// (with the byte position), a number outside the range of a 64-bit float, or the parser's
    /// own position message (`Invalid value around character 7.`). Meant for error details;
    /// call it only after parsing failed.
    public static func parseFailureReason(_ data: Data) -> String {
        if let position = firstInvalidUTF8Position(data) {
            return "The body is not valid UTF-8 text (invalid byte sequence at byte offset \(position), counting from 0). "
                + "JSON must be UTF-8."
        }
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            let message = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            if let number = message.firstMatch(of: /Number (\S+) is not representable/)?.1 {
                return "The number \(number) is out of range: JSON numbers must fit in a 64-bit floating-point value."
            }
            return message
        }
        // Foundation's scanner accepted the text, so what failed is a value inside it.
        return "The text is JSON but holds a value that cannot be represented (a number out of range or an "
            + "unpaired UTF-16 surrogate escape such as \\ud83d)."
    }

    /// The byte offset of the first byte that does not start or continue a valid UTF-8
    /// sequence, or `nil` when all of `data` is valid UTF-8.
    static func firstInvalidUTF8Position(_ data: Data) -> Int? {
        if String(validating: data, as: UTF8.self) != nil { return nil }
        var position = 0
        var iterator = data.makeIterator()
        var decoder = UTF8()
        var consumed = 0
        // Re-decode scalar by scalar, tracking how many bytes each valid scalar took.
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                consumed += UTF8.width(scalar)
                position = consumed
            case .emptyInput:
                return nil
            case .error:
                return position
            }
        }
    }

    /// Parses one chunk of a model provider's stream. A UTF-16 surrogate escape without its
    /// partner (servers split a pair such as `\ud83d\ude00` across two chunks) becomes U+FFFD
    /// instead of failing the whole chunk; anything else that is not JSON throws.
    public init(parsingLenientSurrogates text: String) throws {
        do {
            try self.init(parsing: text)
        } catch {
            guard let repaired = Self.replacingUnpairedSurrogateEscapes(text) else { throw error }
            try self.init(parsing: repaired)
        }
    }

    /// `text` with every `\uD800`–`\uDFFF` escape that is not part of a high-low pair replaced
    /// by `\uFFFD`, or `nil` when there is none. Escaped backslashes (`\\ud83d`) are left alone.
    static func replacingUnpairedSurrogateEscapes(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        func hexValue(at index: Int) -> UInt16? {
            guard index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
            else { return nil }
            return UInt16(String(decoding: bytes[(index + 2)..<(index + 6)], as: UTF8.self), radix: 16)
        }
        func isHigh(_ unit: UInt16) -> Bool { (0xD800...0xDBFF).contains(unit) }
        func isLow(_ unit: UInt16) -> Bool { (0xDC00...0xDFFF).contains(unit) }
        var output: [UInt8] = []
        var changed = false
        var index = 0
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "\\"), index + 1 < bytes.count else {
                output.append(bytes[index])
                index += 1
                continue
            }
            guard let unit = hexValue(at: index) else {
                // Any other escape, `\\` included: copy both bytes so the second is never re-read.
                output.append(contentsOf: bytes[index...(index + 1)])
                index += 2
                continue
            }
            if isHigh(unit), let next = hexValue(at: index + 6), isLow(next) {
                output.append(contentsOf: bytes[index..<(index + 12)])
                index += 12
            } else if isHigh(unit) || isLow(unit) {
                output.append(contentsOf: Array("\\ufffd".utf8))
                changed = true
                index += 6
            } else {
                output.append(contentsOf: bytes[index..<(index + 6)])
                index += 6
            }
        }
        return changed ? String(decoding: output, as: UTF8.self) : nil
    }
}
