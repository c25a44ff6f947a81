import Foundation

/// A named, finite piece of work over a `Codable` payload: each invocation is a run with its
/// own id, record and event stream.
///
/// ```swift
/// struct SummarizeInput: Codable, Sendable { var text: String }
/// struct Summary: Codable, Sendable { var summary: String }
/// let summarize = try Workflow(name: "summarize", payload: SummarizeInput.self) { context in
///     let session = try await context.initialize(writer).session()
///     return try await session.prompt("Summarize:\n\(context.payload.text)", result: Summary.self)
/// }
/// ```
public struct Workflow: Sendable {
    /// A ``DefinitionName``; addresses the workflow (`POST /workflows/<name>`).
    public let name: String
    /// One line for the OpenAPI document.
    public let description: String?
    /// JSON Schema of the payload, derived from its type.
    public let payloadSchema: JSONSchema
    /// JSON Schema of the result, when it could be derived.
    public let resultSchema: JSONSchema?
    private let decode: @Sendable (JSONValue) throws -> any Sendable
    private let execute: @Sendable (any Sendable, WorkflowEnvironment) async throws -> JSONValue

    public init<Payload: Decodable & Sendable, Result: Encodable & Sendable>(
        name: String, description: String? = nil, payload: Payload.Type, result: Result.Type = Result.self,
        run: @escaping @Sendable (WorkflowContext<Payload>) async throws -> Result
    ) throws {
        try DefinitionName.check(name, of: "workflow")
        self.name = name
        self.description = description
        self.payloadSchema = try JSONSchema.derive(from: Payload.self)
        self.resultSchema = (Result.self as? any Decodable.Type).flatMap { type in
            try? Self.schema(of: type)
        }
        self.decode = { json in try Self.decodePayload(json, as: Payload.self) }
        self.execute = { payload, environment in
            guard let typed = payload as? Payload else {
                throw FlueError(.invalidPayload, "payload is not a \(Payload.self)")
            }
            let context = WorkflowContext(payload: typed, environment: environment)
            let value = try await run(context)
            return try JSONValue(encoding: value)
        }
    }

    private static func schema<T: Decodable>(of type: T.Type) throws -> JSONSchema {
        try JSONSchema.derive(from: T.self)
    }

    /// Checks that `json` decodes into the payload type; throws `invalid_payload` with the path
    /// of the first problem.
    public func validatePayload(_ json: JSONValue) throws -> ValidatedPayload {
        ValidatedPayload(json: json, value: try decode(json))
    }

    /// Runs the workflow body with a validated payload.
    public func run(_ payload: ValidatedPayload, environment: WorkflowEnvironment) async throws -> JSONValue {
        try await execute(payload.value, environment)
    }

    private static func decodePayload<P: Decodable>(_ json: JSONValue, as: P.Type) throws -> P {
        do {
            return try json.decode(P.self)
        } catch let error as DecodingError {
            let issue = FlueError.toolInputValidation(tool: "payload", error)
            throw FlueError(
                .invalidPayload,
                issue.message.replacingOccurrences(of: "invalid arguments for tool payload: arguments", with: "payload"),
                details: ["issues": issue.details["issues"] ?? []])
        }
    }
}

/// A payload that decoded into the workflow's payload type.
public struct ValidatedPayload: Sendable {
    public let json: JSONValue
    let value: any Sendable
}

/// What the host gives a run: its id, where events go, how to reach models and store sessions.
public struct WorkflowEnvironment: Sendable {
    public var runId: String
    public var events: EventEmitter
    public var models: any ModelResolver
    public var sessions: any SessionStore
    /// The process environment, for user code.
    public var variables: [String: String]

    public init(
        runId: String, events: EventEmitter, models: any ModelResolver, sessions: any SessionStore,
        variables: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.runId = runId
        self.events = events
        self.models = models
        self.sessions = sessions
        self.variables = variables
    }
}

/// What a workflow body receives.
public struct WorkflowContext<Payload: Sendable>: Sendable {
    /// The decoded payload.
    public let payload: Payload
    let environment: WorkflowEnvironment

    /// The run id (`run_…`).
    public var runId: String { environment.runId }
    /// The process environment.
    public var variables: [String: String] { environment.variables }
    /// Emits `log` events into the run's stream.
    public var log: WorkflowLogger { WorkflowLogger(events: environment.events) }

    /// Initializes an agent for this run: its sessions are scoped to the run id.
    public func initialize(_ agent: Agent, name: String = "default") -> Harness {
        Harness(
            agent: agent, instanceId: environment.runId, name: name, models: environment.models,
            store: environment.sessions, events: environment.events)
    }
}

/// Writes `log` events (`level`, `message`, `attributes`) to the run stream.
public struct WorkflowLogger: Sendable {
    let events: EventEmitter

    public func info(_ message: String, _ attributes: [String: JSONValue] = [:]) { log(.info, message, attributes) }
    public func warn(_ message: String, _ attributes: [String: JSONValue] = [:]) { log(.warn, message, attributes) }
    public func error(_ message: String, _ attributes: [String: JSONValue] = [:]) { log(.error, message, attributes) }

    private func log(_ level: FlueEvent.LogRecord.Level, _ message: String, _ attributes: [String: JSONValue]) {
        events.emit(.log(.init(level: level, message: message, attributes: attributes)))
    }
}
