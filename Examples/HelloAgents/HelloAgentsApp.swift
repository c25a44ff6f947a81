import FlueEngine
import FluePersistence
import FlueProviders
import FlueRuntime
import FlueServer
import Foundation
import Hummingbird
import Logging

/// The definitions of the example application.
enum HelloAgentsApp {
    struct TranslateInput: Codable, Sendable {
        var text: String
        var language: String
    }

    struct Translation: Codable, Sendable {
        enum Confidence: String, Codable, CaseIterable, Sendable { case low, medium, high }
        var translation: String
        var confidence: Confidence
    }

    struct SummarizeInput: Codable, Sendable {
        var text: String
    }

    struct Summary: Codable, Sendable {
        var summary: String
    }

    struct ReviewInput: Codable, Sendable {
        var document: String
    }

    struct Review: Codable, Sendable {
        /// The text of `review.md` as the agent wrote it.
        var review: String
    }

    struct WordCountArgs: Codable, Sendable {
        var text: String
    }

    struct EmailArgs: Codable, Sendable {
        var to: String
        var subject: String
        var body: String
    }

    /// The model used when `MODEL_SPECIFIER` is not set.
    static let fallbackModel: ModelSpecifier = "anthropic/claude-sonnet-4-6"

    static func translator(model: ModelSpecifier) throws -> Agent {
        try Agent(
            name: "translator", model: model,
            instructions: "You translate text faithfully. Rate your confidence honestly.")
    }

    static func summarizer(model: ModelSpecifier) throws -> Agent {
        try Agent(name: "summarizer", model: model, instructions: "You write short, faithful summaries.")
    }

    /// The `reviewer` agent of the `review` workflow: a fresh virtual sandbox per run (nothing is
    /// kept after it) and the file tools, no shell.
    static func reviewer(model: ModelSpecifier) throws -> Agent {
        try Agent(
            name: "reviewer", model: model,
            instructions: "You review documents: clarity, correctness, structure. Be specific and brief.",
            sandbox: .virtual(retainedInstances: 0, capacity: 8 << 20), builtinTools: .only([.read, .write, .edit, .grep]))
    }

    /// The `assistant` agent: a general helper with one custom tool and a virtual sandbox (its
    /// files live as long as this process; each conversation id has its own; the 64 most recent
    /// conversations keep theirs, at most 8 MiB each, so clients cannot grow the server's memory
    /// without bound by inventing ids).
    static func assistant(model: ModelSpecifier) throws -> Agent {
        let wordCount = try FunctionTool(
            name: "word_count", description: "Counts the words in a text."
        ) { (args: WordCountArgs) in
            String(args.text.split(whereSeparator: { $0.isWhitespace || $0.isNewline }).count)
        }
        // Needs a human's approval for every call: the submission waits durably
        // (GET /agents/assistant/<id>/approvals, POST …/approvals/<callId>).
        let sendEmail = try FunctionTool(
            name: "send_email", description: "Sends an email (simulated here: nothing leaves the server)."
        ) { (args: EmailArgs) in
            "Email to \(args.to) about \"\(args.subject)\" sent (simulated)."
        }.requiringApproval()
        return try Agent(
            name: "assistant", description: "A helpful assistant", model: model,
            instructions: "You are a concise, helpful assistant. Use word_count when asked about text length. "
                + "You have a workspace: keep notes and drafts there with the file tools. "
                + "Use send_email only when asked to email someone.",
            tools: [wordCount, sendEmail], sandbox: .virtual(retainedInstances: 64, capacity: 8 << 20))
    }

    static func workflows(model: ModelSpecifier) throws -> [WorkflowRegistration] {
        let translator = try translator(model: model)
        let summarizer = try summarizer(model: model)
        let translate = try Workflow(
            name: "translate", description: "Translate text into a language, with a confidence rating.",
            payload: TranslateInput.self, result: Translation.self
        ) { context in
            context.log.info("translating", ["language": .string(context.payload.language)])
            let session = try await context.initialize(translator).session()
            return try await session.prompt(
                "Translate into \(context.payload.language):\n\n\(context.payload.text)", result: Translation.self)
        }
        let summarize = try Workflow(
            name: "summarize", description: "Summarize a text.", payload: SummarizeInput.self, result: Summary.self
        ) { context in
            let session = try await context.initialize(summarizer).session()
            return try await session.prompt("Summarize in one or two sentences:\n\n\(context.payload.text)", result: Summary.self)
        }
        let reviewer = try reviewer(model: model)
        let review = try Workflow(
            name: "review", description: "Review a document; the agent writes review.md in its sandbox.",
            payload: ReviewInput.self, result: Review.self
        ) { context in
            let harness = context.initialize(reviewer)
            try await harness.files.writeText("document.md", context.payload.document)
            _ = try await harness.session().prompt(
                "Review `document.md`. Write your review as Markdown to `review.md` with the write tool.")
            guard try await harness.files.exists("review.md") else {
                throw FlueError(.resultUnavailable, "the reviewer finished without writing review.md")
            }
            return Review(review: try await harness.files.readText("review.md"))
        }
        return [.http(translate), .http(summarize), .http(review)]
    }

    /// The HTTP-exposed agents: `POST /agents/assistant/<id>` continues conversation `<id>`.
    static func agents(model: ModelSpecifier) throws -> [AgentRegistration] {
        [.http(try assistant(model: model))]
    }

    /// The engine alone (no HTTP server), configured from the environment, over `stores`
    /// (in-memory unless given): what `run` and `routes` use.
    /// `quiet` logs errors only (for `run`, whose stderr carries events as JSON lines).
    static func makeEngine(
        environment: [String: String] = ProcessInfo.processInfo.environment, stores: FlueStores = .inMemory(),
        quiet: Bool = false
    ) throws -> Engine {
        let configuration = try FlueConfiguration.fromEnvironment(environment)
        let registry = try ProviderRegistry(environment: environment)
        let model = registry.defaultModel ?? fallbackModel
        var logger = Logger(label: "hello-agents")
        logger.logLevel = quiet ? .error : configuration.logLevel
        return try Engine(
            workflows: workflows(model: model), agents: agents(model: model), models: registry, stores: stores,
            configuration: configuration.engine, logger: logger)
    }

    /// The application's own routes: `GET /health` for load balancers.
    static func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/health") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"ok":true}"#)))
        }
    }
}
