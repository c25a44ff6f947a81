import ArgumentParser
import FlueClient
import FlueRuntime
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `flue invoke <workflow> --payload JSON [--wait]`.
struct Invoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a workflow run; print its receipt, or with --wait its result.",
        discussion: "Exits 2 when the run failed, 1 when the request failed.")

    @Argument(help: "The workflow name.") var workflow: String
    @Option(help: "The payload as JSON (default {}).") var payload: String = "{}"
    @Flag(help: "Wait for the run's result and print it.") var wait = false
    @Option(help: "An Idempotency-Key: a retry with the same key and payload names the same run.") var idempotencyKey: String?
    @OptionGroup var server: ServerOptions

    func validate() throws {
        guard (try? JSONValue(parsing: payload)) != nil else { throw ValidationError("--payload is not JSON: \(payload)") }
    }

    func run() async throws {
        let client = try server.client()
        let body = try JSONValue(parsing: payload)
        let (workflow, key) = (self.workflow, self.idempotencyKey)
        do {
            if wait {
                let result = try await Progress.whileWaiting("run of \(workflow)") {
                    try await client.workflows.run(workflow, payload: body, as: JSONValue.self, idempotencyKey: key)
                }
                emit(result.jsonString + "\n")
            } else {
                let receipt = try await client.workflows.start(workflow, payload: body, idempotencyKey: key)
                emit(JSONValue.object(["runId": .string(receipt.runId), "streamUrl": .string(receipt.streamUrl), "offset": .string(receipt.offset)]).jsonString + "\n")
            }
        } catch {
            throw Exit.report(error, waited: wait)
        }
    }
}

/// `flue prompt <agent>/<id> "message" [--follow]`.
struct Prompt: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prompt an agent instance and print its answer (or, with --follow, its events as they stream).",
        discussion: "Exits 2 when the submission failed, 1 when the request failed.")

    @Argument(help: "The agent instance: name/id.") var instance: String
    @Argument(help: "The message.") var message: String
    @Flag(name: [.short, .long], help: "Print the prompt's events live until it settles.") var follow = false
    @Option(help: "pretty or ndjson (with --follow).") var format: EventPrinter.Format = .pretty
    @Option(help: "An Idempotency-Key for a safe retry.") var idempotencyKey: String?
    @OptionGroup var server: ServerOptions

    func validate() throws {
        _ = try Logs.instance(instance, label: "the instance")
        if !follow && format != .pretty { throw ValidationError("--format applies with --follow") }
    }

    func run() async throws {
        let client = try server.client()
        let (name, id) = try Logs.instance(instance, label: "the instance")
        let (message, key) = (self.message, self.idempotencyKey)
        do {
            guard follow else {
                let answer = try await Progress.whileWaiting("\(name)/\(id)") {
                    try await client.agents.prompt(name, id, message: message, idempotencyKey: key)
                }
                emit(answer.text + "\n")
                return
            }
            let receipt = try await client.agents.send(name, id, message: message, idempotencyKey: key)
            let printer = EventPrinter(format: format, colour: format == .pretty && EventPrinter.wantsColour(), write: emit)
            // The instance stream holds every prompt's events: print this one's, from its offset, until it settles.
            for try await event in client.events(of: .agent(name, id), from: receipt.offset) {
                guard event.json["submissionId"]?.stringValue == receipt.submissionId else { continue }
                printer.print(event)
                if event.type == "submission_settled" { break }
            }
            printer.finish()
            if printer.failed { throw ExitCode(Exit.workFailed) }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw Exit.report(error, waited: !follow)
        }
    }
}

/// A progress line on stderr while a long wait goes on, when stderr is a terminal.
enum Progress {
    static func whileWaiting<T: Sendable>(_ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        guard isatty(STDERR_FILENO) == 1 else { return try await body() }
        // Runs once the group, the progress task included, is done.
        defer { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                let started = ContinuousClock.now
                while true {
                    try await Task.sleep(for: .seconds(1))
                    let seconds = (ContinuousClock.now - started).components.seconds
                    FileHandle.standardError.write(Data("\r\u{1B}[2Kwaiting for \(what)… \(seconds) s".utf8))
                }
            }
            group.addTask { try await body() }
            while let value = try await group.next() {
                if let value {
                    group.cancelAll()
                    return value
                }
            }
            throw CancellationError()
        }
    }
}
