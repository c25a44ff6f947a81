import Foundation

/// What a tool body can see about the call it is serving.
public struct ToolContext: Sendable {
    /// The model's id for this call.
    public var toolCallId: String
    /// The session the call belongs to.
    public var session: String
    /// Emits a `log` event correlated with the operation.
    public var log: @Sendable (_ level: FlueEvent.LogRecord.Level, _ message: String) -> Void
}

/// A capability the model can call. Most tools are made with ``FunctionTool``; conform directly
/// to pass a hand-written JSON Schema (e.g. tools bridged from an MCP server).
public protocol Tool: Sendable {
    /// Unique within an agent; a ``DefinitionName``.
    var name: String { get }
    /// Tells the model when and how to use the tool.
    var description: String { get }
    /// JSON Schema of the arguments object.
    var parameters: JSONSchema { get }
    /// Runs the tool. A thrown error becomes an error tool result the model can react to.
    func call(_ arguments: JSONValue, context: ToolContext) async throws -> String
}

/// A tool whose arguments decode into a `Decodable` type; its JSON Schema is derived from the type.
///
/// ```swift
/// struct Lookup: Codable { var city: String }
/// let weather = try FunctionTool(name: "weather", description: "Current weather in a city") {
///     (args: Lookup) in "Sunny in \(args.city)"
/// }
/// ```
/// Arguments that fail to decode are answered with a `tool_input_validation` error result,
/// so the model can correct itself; the body never sees them.
public struct FunctionTool<Arguments: Decodable & Sendable>: Tool {
    public let name: String
    public let description: String
    public let parameters: JSONSchema
    private let body: @Sendable (Arguments, ToolContext) async throws -> String

    /// Defines a tool whose body also receives the call context.
    public init(
        name: String, description: String, arguments: Arguments.Type = Arguments.self,
        body: @escaping @Sendable (Arguments, ToolContext) async throws -> String
    ) throws {
        try Self.validate(name: name, description: description)
        let schema = try JSONSchema.derive(from: Arguments.self)
        guard schema.isObject else {
            throw FlueError(
                .invalidDefinition, "tool \(name): arguments must be a struct (a JSON object), not \(Arguments.self)")
        }
        self.name = name
        self.description = description
        self.parameters = schema
        self.body = body
    }

    /// Defines a tool from its arguments alone.
    public init(
        name: String, description: String, arguments: Arguments.Type = Arguments.self,
        body: @escaping @Sendable (Arguments) async throws -> String
    ) throws {
        try self.init(name: name, description: description, arguments: arguments) { args, _ in
            try await body(args)
        }
    }

    public func call(_ arguments: JSONValue, context: ToolContext) async throws -> String {
        let decoded: Arguments
        do {
            decoded = try arguments.decode(Arguments.self)
        } catch let error as DecodingError {
            throw FlueError.toolInputValidation(tool: name, error)
        }
        return try await body(decoded, context)
    }

    static func validate(name: String, description: String) throws {
        try DefinitionName.check(name, of: "tool")
        guard !description.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw FlueError(.invalidDefinition, "tool \(name) needs a description")
        }
    }
}

extension FlueError {
    /// A `tool_input_validation` error describing where decoding failed.
    public static func toolInputValidation(tool: String, _ error: DecodingError) -> FlueError {
        let (path, message): ([any CodingKey], String) =
            switch error {
            case .typeMismatch(let type, let context):
                (context.codingPath, "expected \(jsonTypeName(type))" + foundClause(context.debugDescription))
            case .valueNotFound(let type, let context):
                (context.codingPath, "expected \(jsonTypeName(type)), found null")
            case .keyNotFound(let key, let context):
                (context.codingPath + [key], "missing required property")
            case .dataCorrupted(let context):
                (context.codingPath, context.debugDescription)
            @unknown default:
                ([], "\(error)")
            }
        let pathText = path.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        let where_ = pathText.isEmpty ? "arguments" : "arguments.\(pathText)"
        return FlueError(
            .toolInputValidation, "invalid arguments for tool \(tool): \(where_): \(message)",
            details: [
                "tool": .string(tool),
                "issues": [["path": .string(pathText), "message": .string(message)]],
            ])
    }
}

/// The JSON name of what a Swift type decodes from ("an object", "an integer", …), so messages
/// about client data never show Swift type names.
func jsonTypeName(_ type: Any.Type) -> String {
    switch type {
    case is String.Type, is Substring.Type, is Character.Type: return "a string"
    case is Bool.Type: return "a boolean"
    case is Int.Type, is Int8.Type, is Int16.Type, is Int32.Type, is Int64.Type,
        is UInt.Type, is UInt8.Type, is UInt16.Type, is UInt32.Type, is UInt64.Type:
        return "an integer"
    case is Double.Type, is Float.Type, is Decimal.Type: return "a number"
    default:
        let name = String(describing: type)
        if name.hasPrefix("Array<") || name.hasPrefix("Set<") || name.hasPrefix("[") { return "an array" }
        return "an object"
    }
}

/// `", found a string"` from a decoder message such as "Expected to decode Int but found a string
/// instead.", or "" when the message names nothing we know.
private func foundClause(_ debugDescription: String) -> String {
    guard let word = debugDescription.firstMatch(of: /found (?:an? )?([a-z]+)/)?.1 else { return "" }
    let names = [
        "string": "a string", "number": "a number", "dictionary": "an object", "object": "an object",
        "array": "an array", "bool": "a boolean", "boolean": "a boolean", "null": "null",
    ]
    return names[String(word)].map { ", found \($0)" } ?? ""
}
