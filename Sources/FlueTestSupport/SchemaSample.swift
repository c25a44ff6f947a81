import FlueRuntime

/// Builds a value that satisfies a JSON Schema: the fake server's automatic `finish` answers.
public enum SchemaSample {
    public static func instance(of schema: JSONValue, name: String = "value") -> JSONValue {
        if let choices = schema["enum"]?.arrayValue, let first = choices.first { return first }
        switch schema["type"]?.stringValue {
        case "object":
            var object: [String: JSONValue] = [:]
            for (key, member) in schema["properties"]?.objectValue ?? [:] {
                object[key] = instance(of: member, name: key)
            }
            return .object(object)
        case "array":
            return [instance(of: schema["items"] ?? [:], name: name)]
        case "string":
            switch schema["format"]?.stringValue {
            case "date-time": return "2026-01-01T00:00:00Z"
            case "uri": return "https://example.com/"
            case "uuid": return "00000000-0000-0000-0000-000000000000"
            default: return .string("sample \(name)")
            }
        case "integer": return 1
        case "number": return 1.5
        case "boolean": return true
        default: return .null
        }
    }
}
