import ArgumentParser
import FlueScaffold
import Foundation

/// The standalone `flue` command: `init` scaffolds a project; `logs`, `invoke` and `prompt` talk
/// to a running server.
@main
struct FlueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flue", abstract: "Flue for Swift tools.", subcommands: [Init.self, Logs.self, Invoke.self, Prompt.self, Approvals.self, Decide.self])
}

extension ScaffoldOptions.Provider: ExpressibleByArgument {}
extension ScaffoldOptions.Database: ExpressibleByArgument {}
extension ScaffoldOptions.Deploy: ExpressibleByArgument {}

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a new Flue server project: Package.swift, a workflow, an agent, /health, Dockerfile, sst.config.ts.")

    @Argument(help: "Directory to create.") var directory: String
    @Option(help: "Project name (default: the directory name).") var name: String?
    @Option(help: "Model provider: anthropic or openai.") var provider: ScaffoldOptions.Provider = .anthropic
    @Option(help: "Persistence: memory, sqlite or postgres.") var database: ScaffoldOptions.Database = .memory
    @Option(help: "Deployment files: docker, sst (Docker + SST) or none.") var deploy: ScaffoldOptions.Deploy = .sst
    @Option(help: "Depend on a local checkout of Flue for Swift instead of the published package.") var fluePath: String?

    func run() throws {
        let url = URL(fileURLWithPath: directory)
        let options = ScaffoldOptions(
            name: name ?? url.lastPathComponent, provider: provider, database: database, deploy: deploy,
            fluePath: fluePath)
        do {
            let files = try ProjectTemplates.write(options, into: url)
            print("Created \(options.name) in \(url.path):")
            for file in files { print("  \(file)") }
            print("Next: cd \(directory) && swift run \(options.name) serve --fake-model")
        } catch let error as ScaffoldError {
            throw ValidationError(error.description)
        }
    }
}
