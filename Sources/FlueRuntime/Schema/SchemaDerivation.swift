import Foundation

/// Why a JSON Schema could not be derived from a type.
public struct SchemaDerivationError: Error, CustomStringConvertible, Sendable {
    /// The type whose schema was asked for.
    public var typeName: String
    /// What went wrong, in words.
    public var reason: String

    public var description: String { "cannot derive a JSON Schema for \(typeName): \(reason)" }
}

extension JSONSchema {
    /// Derives the JSON Schema of a `Decodable` type by running its `init(from:)` against a
    /// recording decoder.
    ///
    /// Supported: structs and classes with synthesized or hand-written keyed decoding, optional
    /// properties (not required), arrays, `[String: V]` dictionaries, nested types, `String`/`Int`
    /// raw-value enums that are `CaseIterable`, `Bool`, all integer and floating-point types,
    /// `Date` (ISO-8601 string), `URL`, `UUID`, `Data` (base64) and ``JSONValue`` (any JSON).
    /// Not supported (a ``SchemaDerivationError`` says so): enums with associated values,
    /// raw-value enums that are not `CaseIterable`, recursive types, and `init(from:)`
    /// implementations that reject placeholder values (zero, empty string, first enum case).
    public static func derive<T: Decodable>(from type: T.Type) throws -> JSONSchema {
        let deriver = SchemaDeriver()
        let node = try deriver.node(for: T.self)
        return JSONSchema(node.schema)
    }
}

/// Types that can describe their own schema and produce a placeholder during derivation.
/// Dictionaries and the special leaf types conform; users never need to.
protocol SchemaLeaf {
    static func leafSchema(_ deriver: SchemaDeriver) throws -> JSONValue
    static var placeholder: Self { get }
}

extension String: SchemaLeaf {
    static func leafSchema(_: SchemaDeriver) -> JSONValue { ["type": "string"] }
    static var placeholder: String { "" }
}
extension Bool: SchemaLeaf {
    static func leafSchema(_: SchemaDeriver) -> JSONValue { ["type": "boolean"] }
    static var placeholder: Bool { false }
}
extension Double: SchemaLeaf {
    static func leafSchema(_: SchemaDeriver) -> JSONValue { ["type": "number"] }
    static var placeholder: Double { 0 }
}
extension Float: SchemaLeaf {
    static func leafSchema(_: SchemaDeriver) -> JSONValue { ["type": "number"] }
    static var placeholder: Float { 0 }
}
extension Decimal: SchemaLeaf {
    static func leafSchema(_: SchemaDeriver) -> JSONValue { ["type": "number"] }
    static var placeholder: Decimal { 0 }
}
extension Date: SchemaLeaf {
    static func leafSchema(_: SchemaDeriver) -> JSONValue { ["type": "string", "format": "date-time"] }
    static var placeholder: Date { Date(timeIntervalSince1970: 0) }
}
extension URL: SchemaLeaf {
    static func leafSchema(_: SchemaDeriver) -> JSONValue { ["type": "string", "format": "uri"] }
    static var placeholder: URL { URL(string: "https://example.invalid/")! }
}
extension UUID: SchemaLeaf {
    static func leafSchema(_: SchemaDeriver) -> JSONValue { ["type": "string", "format": "uuid"] }
    static var placeholder: UUID { UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)) }
}
extension Data: SchemaLeaf {
    static func leafSchema(_: SchemaDeriver) -> JSONValue { ["type": "string", "contentEncoding": "base64"] }
    static var placeholder: Data { Data() }
}
extension JSONValue: SchemaLeaf {
    static func leafSchema(_: SchemaDeriver) -> JSONValue { [:] }
    static var placeholder: JSONValue { .null }
}
extension Dictionary: SchemaLeaf where Key == String, Value: Decodable {
    static func leafSchema(_ deriver: SchemaDeriver) throws -> JSONValue {
        ["type": "object", "additionalProperties": try deriver.node(for: Value.self).schema]
    }
    static var placeholder: [String: Value] { [:] }
}

/// Integer types share one schema.
extension SchemaLeaf where Self: FixedWidthInteger {
    static func leafSchema(_: SchemaDeriver) -> JSONValue { ["type": "integer"] }
    static var placeholder: Self { 0 }
}
extension Int: SchemaLeaf {}
extension Int8: SchemaLeaf {}
extension Int16: SchemaLeaf {}
extension Int32: SchemaLeaf {}
extension Int64: SchemaLeaf {}
extension UInt: SchemaLeaf {}
extension UInt8: SchemaLeaf {}
extension UInt16: SchemaLeaf {}
extension UInt32: SchemaLeaf {}
extension UInt64: SchemaLeaf {}

/// One node of the schema being recorded. Reference type because decoding containers share it.
final class SchemaNode {
    enum Kind {
        case unknown
        case fixed(JSONValue)
        case object(properties: [(name: String, node: SchemaNode)], optional: Set<String>)
        case array(SchemaNode?)
    }

    var kind: Kind = .unknown
    var descriptions: [String: String] = [:]

    init(_ kind: Kind = .unknown) { self.kind = kind }

    var schema: JSONValue {
        switch kind {
        case .unknown:
            return [:]
        case .fixed(let schema):
            return schema
        case .array(let items):
            return ["type": "array", "items": items?.schema ?? [:]]
        case .object(let properties, let optional):
            var members: [String: JSONValue] = [:]
            for (name, node) in properties {
                var schema = node.schema
                if let text = descriptions[name], case .object(var object) = schema {
                    object["description"] = .string(text)
                    schema = .object(object)
                }
                members[name] = schema
            }
            let required = properties.map(\.name).filter { !optional.contains($0) }
            return [
                "type": "object",
                "properties": .object(members),
                "required": .array(required.map(JSONValue.string)),
                "additionalProperties": false,
            ]
        }
    }

    func addProperty(_ name: String, _ node: SchemaNode) {
        guard case .object(var properties, let optional) = kind else {
            kind = .object(properties: [(name, node)], optional: [])
            return
        }
        if let index = properties.firstIndex(where: { $0.name == name }) {
            properties[index].node = node
        } else {
            properties.append((name, node))
        }
        kind = .object(properties: properties, optional: optional)
    }

    func markOptional(_ name: String) {
        if case .object(let properties, var optional) = kind {
            optional.insert(name)
            kind = .object(properties: properties, optional: optional)
        } else {
            kind = .object(properties: [], optional: [name])
        }
    }
}

/// Drives schema derivation; remembers the types being derived to reject recursion.
final class SchemaDeriver {
    private var inProgress: [ObjectIdentifier] = []

    func node<T: Decodable>(for type: T.Type) throws -> SchemaNode {
        try derive(T.self).node
    }

    func derive<T: Decodable>(_ type: T.Type) throws -> (node: SchemaNode, value: T) {
        if let leaf = T.self as? any SchemaLeaf.Type {
            return (SchemaNode(.fixed(try leaf.leafSchema(self))), leaf.placeholder as! T)
        }
        if let enumeration = T.self as? any (CaseIterable & RawRepresentable).Type {
            let (schema, first) = try enumSchema(enumeration, typeName: "\(T.self)")
            guard let value = first as? T else {
                throw SchemaDerivationError(typeName: "\(T.self)", reason: "enum has no cases")
            }
            return (SchemaNode(.fixed(schema)), value)
        }
        let id = ObjectIdentifier(T.self)
        if inProgress.contains(id) {
            throw SchemaDerivationError(typeName: "\(T.self)", reason: "recursive types are not supported")
        }
        inProgress.append(id)
        defer { inProgress.removeLast() }
        let node = SchemaNode()
        if let described = T.self as? any SchemaDescribing.Type {
            node.descriptions = described.schemaDescriptions
        }
        do {
            let value = try T(from: RecordingDecoder(node: node, deriver: self, codingPath: []))
            return (node, value)
        } catch let error as SchemaDerivationError {
            throw error
        } catch {
            throw SchemaDerivationError(
                typeName: "\(T.self)",
                reason: "its init(from:) rejected placeholder values (\(error)); enums need String or Int raw values and CaseIterable, enums with associated values are not supported"
            )
        }
    }

    private func enumSchema<E: CaseIterable & RawRepresentable>(
        _ type: E.Type, typeName: String
    ) throws -> (JSONValue, Any?) {
        let cases = Array(E.allCases)
        if let strings = cases.map({ $0.rawValue as? String }) as? [String] {
            return (["type": "string", "enum": .array(strings.map(JSONValue.string))], cases.first)
        }
        if let ints = cases.map({ $0.rawValue as? Int }) as? [Int] {
            return (["type": "integer", "enum": .array(ints.map(JSONValue.int))], cases.first)
        }
        throw SchemaDerivationError(typeName: typeName, reason: "enum raw values must be String or Int")
    }
}

/// A `Decoder` that records what `init(from:)` asks for instead of reading data.
struct RecordingDecoder: Decoder {
    let node: SchemaNode
    let deriver: SchemaDeriver
    var codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        if case .unknown = node.kind { node.kind = .object(properties: [], optional: []) }
        return KeyedDecodingContainer(RecordingKeyedContainer<Key>(node: node, deriver: deriver, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        RecordingUnkeyedContainer(node: node, deriver: deriver, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        RecordingSingleValueContainer(node: node, deriver: deriver, codingPath: codingPath)
    }
}

struct RecordingKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let node: SchemaNode
    let deriver: SchemaDeriver
    var codingPath: [any CodingKey]
    var allKeys: [Key] { [] }

    func contains(_ key: Key) -> Bool { true }

    /// Synthesized `decodeIfPresent` asks `decodeNil` first: that is how optional members show.
    func decodeNil(forKey key: Key) throws -> Bool {
        node.markOptional(key.stringValue)
        return false
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let (child, value) = try deriver.derive(T.self)
        node.addProperty(key.stringValue, child)
        return value
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decodeGeneric(key) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try decodeGeneric(key) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decodeGeneric(key) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try decodeGeneric(key) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decodeGeneric(key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try decodeGeneric(key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try decodeGeneric(key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try decodeGeneric(key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decodeGeneric(key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try decodeGeneric(key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try decodeGeneric(key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try decodeGeneric(key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try decodeGeneric(key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decodeGeneric(key) }

    private func decodeGeneric<T: Decodable>(_ key: Key) throws -> T {
        try decode(T.self, forKey: key)
    }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type, forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        let child = SchemaNode(.object(properties: [], optional: []))
        node.addProperty(key.stringValue, child)
        return KeyedDecodingContainer(
            RecordingKeyedContainer<NestedKey>(node: child, deriver: deriver, codingPath: codingPath + [key]))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        let child = SchemaNode(.array(nil))
        node.addProperty(key.stringValue, child)
        return RecordingUnkeyedContainer(node: child, deriver: deriver, codingPath: codingPath + [key])
    }

    func superDecoder() throws -> any Decoder {
        RecordingDecoder(node: node, deriver: deriver, codingPath: codingPath)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        let child = SchemaNode()
        node.addProperty(key.stringValue, child)
        return RecordingDecoder(node: child, deriver: deriver, codingPath: codingPath + [key])
    }
}

/// Reports one element, then the end: enough for `Array.init(from:)` to reveal its element type.
struct RecordingUnkeyedContainer: UnkeyedDecodingContainer {
    let node: SchemaNode
    let deriver: SchemaDeriver
    var codingPath: [any CodingKey]
    var count: Int? { nil }
    var currentIndex = 0
    var isAtEnd: Bool { currentIndex > 0 }

    init(node: SchemaNode, deriver: SchemaDeriver, codingPath: [any CodingKey]) {
        self.node = node
        self.deriver = deriver
        self.codingPath = codingPath
        if case .array = node.kind {} else { node.kind = .array(nil) }
    }

    mutating func decodeNil() throws -> Bool { false }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (child, value) = try deriver.derive(T.self)
        node.kind = .array(child)
        currentIndex += 1
        return value
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type
    ) throws -> KeyedDecodingContainer<NestedKey> {
        let child = SchemaNode(.object(properties: [], optional: []))
        node.kind = .array(child)
        currentIndex += 1
        return KeyedDecodingContainer(
            RecordingKeyedContainer<NestedKey>(node: child, deriver: deriver, codingPath: codingPath))
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let child = SchemaNode(.array(nil))
        node.kind = .array(child)
        currentIndex += 1
        return RecordingUnkeyedContainer(node: child, deriver: deriver, codingPath: codingPath)
    }

    mutating func superDecoder() throws -> any Decoder {
        let child = SchemaNode()
        node.kind = .array(child)
        currentIndex += 1
        return RecordingDecoder(node: child, deriver: deriver, codingPath: codingPath)
    }
}

struct RecordingSingleValueContainer: SingleValueDecodingContainer {
    let node: SchemaNode
    let deriver: SchemaDeriver
    var codingPath: [any CodingKey]

    func decodeNil() -> Bool { false }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (child, value) = try deriver.derive(T.self)
        node.kind = child.kind
        return value
    }

    func decode(_ type: Bool.Type) throws -> Bool { try decodeGeneric() }
    func decode(_ type: String.Type) throws -> String { try decodeGeneric() }
    func decode(_ type: Double.Type) throws -> Double { try decodeGeneric() }
    func decode(_ type: Float.Type) throws -> Float { try decodeGeneric() }
    func decode(_ type: Int.Type) throws -> Int { try decodeGeneric() }
    func decode(_ type: Int8.Type) throws -> Int8 { try decodeGeneric() }
    func decode(_ type: Int16.Type) throws -> Int16 { try decodeGeneric() }
    func decode(_ type: Int32.Type) throws -> Int32 { try decodeGeneric() }
    func decode(_ type: Int64.Type) throws -> Int64 { try decodeGeneric() }
    func decode(_ type: UInt.Type) throws -> UInt { try decodeGeneric() }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try decodeGeneric() }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try decodeGeneric() }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try decodeGeneric() }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decodeGeneric() }

    private func decodeGeneric<T: Decodable>() throws -> T {
        try decode(T.self)
    }
}
