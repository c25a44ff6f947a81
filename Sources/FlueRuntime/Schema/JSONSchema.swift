import Foundation

/// A JSON Schema document (draft 2020-12 subset) describing tool parameters and structured results.
///
/// Build one from a `Decodable` type with ``JSONSchema/derive(from:)``, or wrap a hand-written
/// document with ``JSONSchema/init(_:)`` when the shape cannot be derived (e.g. MCP tools).
public struct JSONSchema: Sendable, Hashable, Codable {
    /// The schema document.
    public var value: JSONValue

    /// Wraps a hand-written schema document.
    public init(_ value: JSONValue) {
        self.value = value
    }

    public init(from decoder: any Decoder) throws {
        self.value = try JSONValue(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try value.encode(to: encoder)
    }

    /// `true` when the schema describes a JSON object (tool parameters must).
    public var isObject: Bool { value["type"] == "object" }

    /// An object schema with no properties: for tools that take no arguments.
    public static let emptyObject = JSONSchema([
        "type": "object", "properties": [:], "additionalProperties": false,
    ])

    /// Wraps a non-object schema as `{"result": <schema>}` so it can be a tool's parameters.
    public var wrappedAsObject: JSONSchema {
        if isObject { return self }
        return JSONSchema([
            "type": "object",
            "properties": ["result": value],
            "required": ["result"],
            "additionalProperties": false,
        ])
    }
}

/// Per-property descriptions that schema derivation adds to a type's derived schema.
///
/// Conform a tool's parameter type (or a result type) to tell the model what each field means:
/// ```swift
/// struct Args: Codable, SchemaDescribing {
///     var city: String
///     static let schemaDescriptions = ["city": "City name, e.g. Paris"]
/// }
/// ```
public protocol SchemaDescribing {
    /// Property name → description.
    static var schemaDescriptions: [String: String] { get }
}
