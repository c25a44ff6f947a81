/// What `flue init` generates.
public struct ScaffoldOptions: Sendable, Hashable {
    public enum Provider: String, Sendable, CaseIterable { case anthropic, openai }
    public enum Database: String, Sendable, CaseIterable { case memory, sqlite, postgres }
    public enum Deploy: String, Sendable, CaseIterable { case docker, sst, none }

    /// Package and executable name: lowercase letters, digits and `-`, starting with a letter.
    public var name: String
    public var provider: Provider
    public var database: Database
    public var deploy: Deploy
    /// Depend on Flue for Swift at this local path instead of by URL (for development and tests).
    public var fluePath: String?

    public init(
        name: String, provider: Provider = .anthropic, database: Database = .memory, deploy: Deploy = .sst,
        fluePath: String? = nil
    ) {
        self.name = name
        self.provider = provider
        self.database = database
        self.deploy = deploy
        self.fluePath = fluePath
    }

    /// Where the package is published; generated manifests depend on it by URL and version.
    public static let flueURL = "https://github.com/flue-swift/flue-swift.git"
    public static let flueVersion = "0.1.0"
    /// The port the container listens on (`ENV PORT`), which the load balancer forwards to.
    public static let containerPort = 8080
    /// The route the load balancer and container health checks call.
    public static let healthPath = "/health"

    var model: String {
        switch provider {
        case .anthropic: "anthropic/claude-sonnet-4-6"
        case .openai: "openai/gpt-4.1"
        }
    }

    var keyVariable: String { provider == .anthropic ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY" }
    var secretName: String { provider == .anthropic ? "AnthropicApiKey" : "OpenAIApiKey" }
    /// The SST secret holding the server's bearer tokens (`API_TOKENS`).
    static let tokenSecretName = "ApiTokens"

    /// `flue-agents` → `FlueAgents` (an SST component prefix).
    var pascalName: String {
        name.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    /// Checks the name; throws a message fit for the command line.
    public func validate() throws {
        guard name.wholeMatch(of: /[a-z][a-z0-9-]{0,62}/) != nil, !name.hasSuffix("-"), !name.contains("--") else {
            throw ScaffoldError(
                "project name \"\(name)\" must start with a lowercase letter and contain only lowercase letters, digits and single hyphens")
        }
    }
}

/// A scaffolding failure, with a message for the command line.
public struct ScaffoldError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
