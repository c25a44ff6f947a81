import Foundation
import Testing

@testable import FlueRuntime

private enum Confidence: String, Codable, CaseIterable { case low, medium, high }
private enum Priority: Int, Codable, CaseIterable { case one = 1, two = 2 }

private struct Address: Codable {
    var street: String
    var zip: Int?
}

private struct Everything: Codable, SchemaDescribing {
    var name: String
    var count: Int
    var ratio: Double
    var enabled: Bool
    var nickname: String?
    var tags: [String]
    var confidence: Confidence
    var priority: Priority
    var address: Address
    var history: [Address]
    var scores: [String: Double]
    var createdAt: Date
    var link: URL
    var id: UUID
    var extra: JSONValue

    static let schemaDescriptions = ["name": "The display name"]
}

private enum Shape: Codable { case circle(radius: Double), square(side: Double) }
private enum Loose: String, Codable { case a, b }
private struct UsesLoose: Codable { var loose: Loose }
private final class Node: Codable { var children: [Node] = [] }

@Suite struct SchemaDerivationTests {
    @Test func derivesEveryMemberKind() throws {
        let schema = try JSONSchema.derive(from: Everything.self).value
        #expect(schema["type"] == "object")
        #expect(schema["additionalProperties"] == false)
        let properties = try #require(schema["properties"]?.objectValue)
        #expect(properties["name"] == ["type": "string", "description": "The display name"])
        #expect(properties["count"] == ["type": "integer"])
        #expect(properties["ratio"] == ["type": "number"])
        #expect(properties["enabled"] == ["type": "boolean"])
        #expect(properties["nickname"] == ["type": "string"])
        #expect(properties["tags"] == ["type": "array", "items": ["type": "string"]])
        #expect(properties["confidence"] == ["type": "string", "enum": ["low", "medium", "high"]])
        #expect(properties["priority"] == ["type": "integer", "enum": [1, 2]])
        #expect(
            properties["address"] == [
                "type": "object",
                "properties": ["street": ["type": "string"], "zip": ["type": "integer"]],
                "required": ["street"],
                "additionalProperties": false,
            ])
        #expect(properties["history"]?["items"] == properties["address"])
        #expect(properties["scores"] == ["type": "object", "additionalProperties": ["type": "number"]])
        #expect(properties["createdAt"] == ["type": "string", "format": "date-time"])
        #expect(properties["link"] == ["type": "string", "format": "uri"])
        #expect(properties["id"] == ["type": "string", "format": "uuid"])
        #expect(properties["extra"] == [:])
        let required = Set(try #require(schema["required"]?.arrayValue).compactMap(\.stringValue))
        #expect(required == Set(properties.keys).subtracting(["nickname"]))
    }

    @Test func wrapsNonObjectSchemas() throws {
        let schema = try JSONSchema.derive(from: [String].self)
        #expect(!schema.isObject)
        #expect(
            schema.wrappedAsObject.value == [
                "type": "object",
                "properties": ["result": ["type": "array", "items": ["type": "string"]]],
                "required": ["result"],
                "additionalProperties": false,
            ])
        #expect(try JSONSchema.derive(from: Confidence.self).value == ["type": "string", "enum": ["low", "medium", "high"]])
    }

    @Test func rejectsEnumsWithAssociatedValues() {
        #expect(throws: SchemaDerivationError.self) { try JSONSchema.derive(from: Shape.self) }
    }

    @Test func rejectsRawEnumsThatAreNotCaseIterable() {
        #expect(throws: SchemaDerivationError.self) { try JSONSchema.derive(from: UsesLoose.self) }
    }

    @Test func rejectsRecursiveTypes() throws {
        let error = try #require(throws: SchemaDerivationError.self) { try JSONSchema.derive(from: Node.self) }
        #expect(error.reason.contains("recursive"))
    }
}
