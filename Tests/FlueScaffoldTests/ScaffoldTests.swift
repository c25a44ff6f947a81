import Foundation
import Testing

@testable import FlueScaffold

/// Checks that a TypeScript/Swift text has balanced brackets outside string literals and comments.
func balanced(_ text: String) -> Bool {
    var stack: [Character] = []
    var quote: Character?
    var previous: Character = " "
    var lineComment = false
    for character in text {
        if lineComment {
            if character == "\n" { lineComment = false }
            previous = character
            continue
        }
        if let open = quote {
            if character == open && previous != "\\" { quote = nil }
        } else if character == "/" && previous == "/" {
            lineComment = true
        } else if "'\"`".contains(character) {
            quote = character
        } else if "({[".contains(character) {
            stack.append(character)
        } else if let close = ")}]".firstIndex(of: character) {
            let expected: Character = ["(", "{", "["][")}]".distance(from: ")}]".startIndex, to: close)]
            guard stack.popLast() == expected else { return false }
        }
        previous = character
    }
    return stack.isEmpty && quote == nil
}

@Suite struct ScaffoldTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test(arguments: ScaffoldOptions.Provider.allCases, ScaffoldOptions.Database.allCases)
    func sstConfigHasEveryRequiredField(provider: ScaffoldOptions.Provider, database: ScaffoldOptions.Database) throws {
        let options = ScaffoldOptions(name: "flue-agents", provider: provider, database: database, deploy: .sst)
        let config = DeploymentTemplates.sstConfig(options)
        #expect(balanced(config))
        #expect(config.hasPrefix("/// <reference path=\"./.sst/platform/config.d.ts\" />"))
        #expect(config.contains("name: 'flue-agents'"))
        #expect(config.contains("home: 'aws'"))
        #expect(config.contains("removal: input.stage === 'production' ? 'retain' : 'remove'"))
        #expect(config.contains("const vpc = new sst.aws.Vpc('FlueAgentsVpc');"))
        #expect(config.contains("new sst.aws.Cluster('FlueAgentsCluster', { vpc })"))
        #expect(config.contains("new sst.aws.Service('FlueAgents', {"))
        #expect(config.contains("image: { context: '.', dockerfile: 'Dockerfile' }"))
        #expect(config.contains("rules: [{ listen: '80/http', forward: '8080/http' }]"))
        #expect(config.contains("'8080/http': { path: '/health' }"))
        #expect(config.contains("health: { command: ['CMD-SHELL', 'curl -f http://localhost:8080/health || exit 1'] }"))
        #expect(config.contains("args.idleTimeout = 3600;"))
        #expect(config.contains("KEEP_ALIVE_TIMEOUT_SECONDS: '3605',"), "the server outlasts the balancer's idle timeout")
        #expect(config.contains("// scaling: { min: 2, max: 4 },"))
        let secret = provider == .anthropic ? "AnthropicApiKey" : "OpenAIApiKey"
        let variable = provider == .anthropic ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY"
        #expect(config.contains("const apiKey = new sst.Secret('\(secret)');"))
        #expect(config.contains("\(variable): apiKey.value,"))
        #expect(config.contains("MODEL_SPECIFIER: '\(provider == .anthropic ? "anthropic/claude-sonnet-4-6" : "openai/gpt-4.1")'"))
        #expect(!config.contains("FLUE_"))
        // The guard's secret: bearer tokens from an SST secret, surfaced as API_TOKENS (issue 19).
        #expect(config.contains("const apiTokens = new sst.Secret('ApiTokens');"))
        #expect(config.contains("API_TOKENS: apiTokens.value,"))
        #expect(config.contains(#"sst secret set ApiTokens "$(openssl rand -hex 32)""#))
        #expect(config.contains("// domain: 'api.example.com',"), "HTTPS shown next to the plain listener")
        if database == .postgres {
            #expect(config.contains("const db = new sst.aws.Postgres('FlueAgentsDb', { vpc });"))
            #expect(config.contains("link: [apiKey, apiTokens, db]"))
            #expect(
                config.contains(
                    "DATABASE_URL: $interpolate`postgresql://${db.username}:${db.password}@${db.host}:${db.port}/${db.database}`"))
        } else {
            #expect(!config.contains("sst.aws.Postgres"))
            #expect(config.contains("link: [apiKey, apiTokens]"))
        }
    }

    @Test func dockerfileMatchesTheLoadBalancerAndRunsUnprivilegedUnderTini() {
        let dockerfile = DeploymentTemplates.dockerfile(product: "flue-agents")
        let config = DeploymentTemplates.sstConfig(ScaffoldOptions(name: "flue-agents"))
        let port = try? #require(dockerfile.firstMatch(of: /ENV PORT=(\d+)/)?.1)
        #expect(port == "8080")
        #expect(dockerfile.contains("EXPOSE \(port ?? "")"))
        #expect(config.contains("forward: '\(port ?? "")/http'"))
        #expect(dockerfile.contains("FROM swift:6.3-noble AS build"))
        #expect(dockerfile.contains("--static-swift-stdlib"))
        #expect(dockerfile.contains("RUN swift package resolve"))
        #expect(dockerfile.contains("COPY Package.swift Package.resolved* ./"))
        #expect(dockerfile.contains("USER 10001:10001"))
        #expect(dockerfile.contains(#"ENTRYPOINT ["tini", "--", "/usr/local/bin/flue-agents"]"#))
        #expect(!dockerfile.contains("API_KEY"))
        #expect(DeploymentTemplates.dockerignore.contains(".build\n"))
        #expect(DeploymentTemplates.dockerignore.contains(".git\n"))
        #expect(DeploymentTemplates.dockerignore.contains(".env\n"))
    }

    @Test func theHealthRouteTheLoadBalancerChecksExistsInTheAppAndTheFlueRoutesAreGuarded() {
        let app = ProjectTemplates.appSource(ScaffoldOptions(name: "flue-agents"))
        #expect(app.contains("router.get(\"/health\")"))
        #expect(app.contains("import FlueAuth"))
        #expect(app.contains("access: try await AccessPolicy.fromEnvironment(environment)"))
        let manifest = ProjectTemplates.packageManifest(ScaffoldOptions(name: "flue-agents"))
        #expect(manifest.contains(#".product(name: "FlueAuth", package: "flue-swift")"#))
        #expect(ProjectTemplates.envExample(ScaffoldOptions(name: "flue-agents")).contains("\n# API_TOKENS=\n"))
        #expect(balanced(app))
    }

    @Test func thisRepositorysDeploymentFilesAreTheGeneratedOnes() throws {
        let options = ScaffoldOptions(name: "hello-agents", database: .postgres, deploy: .sst)
        let root = Self.repositoryRoot
        #expect(
            try String(contentsOf: root.appendingPathComponent("Dockerfile"), encoding: .utf8)
                == DeploymentTemplates.dockerfile(product: "hello-agents"))
        #expect(
            try String(contentsOf: root.appendingPathComponent(".dockerignore"), encoding: .utf8)
                == DeploymentTemplates.dockerignore)
        #expect(
            try String(contentsOf: root.appendingPathComponent("sst.config.ts"), encoding: .utf8)
                == DeploymentTemplates.sstConfig(options))
    }

    @Test func writesAProjectAndRefusesBadNamesAndNonEmptyDirectories() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flue-init-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let options = ScaffoldOptions(name: "my-agents", database: .sqlite, deploy: .sst, fluePath: "/src/flue-swift")
        let written = try ProjectTemplates.write(options, into: directory)
        #expect(
            Set(written) == [
                "Package.swift", "Sources/App/App.swift", ".env.example", ".gitignore", "README.md", "Dockerfile",
                ".dockerignore", "sst.config.ts",
            ])
        let manifest = try String(contentsOf: directory.appendingPathComponent("Package.swift"), encoding: .utf8)
        #expect(manifest.contains(".package(path: \"/src/flue-swift\")"))
        #expect(manifest.contains(".product(name: \"FlueServer\", package: \"flue-swift\")"))
        #expect(balanced(manifest))
        let env = try String(contentsOf: directory.appendingPathComponent(".env.example"), encoding: .utf8)
        #expect(env.contains("SQLITE_PATH=./my-agents.sqlite"))
        #expect(throws: ScaffoldError.self) { try ProjectTemplates.write(options, into: directory) }
        for bad in ["My-Agents", "1agents", "agents-", "a--b", "has space"] {
            #expect(throws: ScaffoldError.self) { try ScaffoldOptions(name: bad).validate() }
        }
        let published = ProjectTemplates.packageManifest(ScaffoldOptions(name: "x"))
        #expect(published.contains(".package(url: \"\(ScaffoldOptions.flueURL)\", from: \"\(ScaffoldOptions.flueVersion)\")"))
        let none = ProjectTemplates.files(ScaffoldOptions(name: "x", deploy: .none)).map(\.path)
        #expect(!none.contains("Dockerfile") && !none.contains("sst.config.ts"))
        let docker = ProjectTemplates.files(ScaffoldOptions(name: "x", deploy: .docker)).map(\.path)
        #expect(docker.contains("Dockerfile") && !docker.contains("sst.config.ts"))
    }
}
