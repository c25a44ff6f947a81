import ArgumentParser
import FlueClient
import FlueRuntime
import Foundation

/// `flue approvals <agent>/<id>`: the tool calls waiting for a decision.
struct Approvals: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List an agent instance's tool calls that wait for a human decision.")

    @Argument(help: "The agent instance: name/id.") var instance: String
    @OptionGroup var server: ServerOptions

    func validate() throws {
        _ = try Logs.instance(instance, label: "the instance")
    }

    func run() async throws {
        let (name, id) = try Logs.instance(instance, label: "the instance")
        do {
            let pending = try await server.client().approvals.list(agent: name, id: id)
            if pending.isEmpty { emit("no tool call waits for a decision\n") }
            for call in pending {
                emit("\(call.callId)  \(call.tool)  \((call.arguments ?? .null).jsonString)\n")
            }
        } catch {
            throw Exit.report(error)
        }
    }
}

/// `flue decide <agent>/<id> <callId> approve|deny [--reason …]`.
struct Decide: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Approve or deny a tool call; its submission resumes (on any replica).")

    @Argument(help: "The agent instance: name/id.") var instance: String
    @Argument(help: "The call id (from `flue approvals` or the approval_requested event).") var callId: String
    @Argument(help: "approve or deny.") var decision: String
    @Option(help: "Why (the model reads it on a denial).") var reason: String?
    @OptionGroup var server: ServerOptions

    func validate() throws {
        _ = try Logs.instance(instance, label: "the instance")
        guard FlueClient.Decision(rawValue: decision) != nil else { throw ValidationError("the decision must be approve or deny") }
    }

    func run() async throws {
        let (name, id) = try Logs.instance(instance, label: "the instance")
        do {
            try await server.client().approvals.decide(
                agent: name, id: id, callId: callId, FlueClient.Decision(rawValue: decision) ?? .deny, reason: reason)
            emit("\(decision == "approve" ? "approved" : "denied"): \(callId)\n")
        } catch {
            throw Exit.report(error)
        }
    }
}
