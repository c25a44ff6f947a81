import ArgumentParser
import FlueClient
import Foundation

extension EventPrinter.Format: ExpressibleByArgument {}

/// `flue logs <runId> | --agent name/id`: prints a run's or an agent instance's events.
struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the events of a workflow run or an agent instance.",
        discussion: """
            Without --follow, prints what the stream holds and exits; with it, follows live (SSE, \
            reconnecting from the last offset if the connection drops) until the run ends, or \
            until interrupted for an agent instance. Exits 2 when the run (or a submission) failed, \
            1 when the request failed.
            """)

    @Argument(help: "The run id (omit with --agent).") var runId: String?
    @Option(help: "An agent instance instead of a run: name/id.") var agent: String?
    @OptionGroup var server: ServerOptions
    @Flag(name: [.short, .long], help: "Follow new events live.") var follow = false
    @Option(help: "Start after this offset (one the server returned); default: the start.") var from: String?
    @Option(help: "Only the last N events that exist now (then live ones with --follow).") var tail: Int?
    @Option(help: "pretty or ndjson (one JSON event per line).") var format: EventPrinter.Format = .pretty

    func validate() throws {
        guard runId != nil || agent != nil else { throw ValidationError("give a run id, or --agent name/id") }
        guard runId == nil || agent == nil else { throw ValidationError("give a run id or --agent name/id, not both") }
        if let agent { _ = try Self.instance(agent) }
        if let tail, tail < 1 { throw ValidationError("--tail must be at least 1") }
        if tail != nil, from != nil { throw ValidationError("--tail reads from the start: do not combine it with --from") }
    }

    static func instance(_ text: String, label: String = "--agent") throws -> (String, String) {
        guard let slash = text.firstIndex(of: "/"), slash != text.startIndex, text.index(after: slash) != text.endIndex else {
            throw ValidationError("\(label) must be name/id, got \"\(text)\"")
        }
        return (String(text[..<slash]), String(text[text.index(after: slash)...]))
    }

    func run() async throws {
        let client = try server.client()
        let address: FlueClient.StreamAddress
        if let agent {
            let (name, id) = try Self.instance(agent)
            address = .agent(name, id)
        } else {
            address = .run(runId ?? "")
        }
        let printer = EventPrinter(format: format, colour: format == .pretty && EventPrinter.wantsColour(), write: emit)
        // Without --follow a server that does not answer is reported at once; following, a
        // dropped connection is read again (the first connection must succeed either way).
        let stream = client.events(of: address, from: from ?? "-1", tail: tail, live: follow ? .sse : .catchUp, reconnects: follow ? 10 : 1)
        do {
            for try await event in stream { printer.print(event) }
        } catch {
            printer.finish()
            let what = agent.map { "flue logs --agent \($0)" } ?? "flue logs \(runId ?? "")"
            throw Exit.report(error, resume: what + (follow ? " -f" : "") + server.repeatedOptions)
        }
        printer.finish()
        if printer.failed { throw ExitCode(Exit.workFailed) }
    }
}
