import FluePersistence
import FlueRuntime
import Foundation

/// An agent and whether it has HTTP routes.
public struct AgentRegistration: Sendable {
    public var agent: Agent
    /// `true`: `POST`/`GET`/`HEAD /agents/<name>/:id` exist. `false`: instances only receive
    /// input from code (``Engine/dispatch(agent:id:input:dispatchId:)``).
    public var exposed: Bool

    /// An agent with HTTP routes.
    public static func http(_ agent: Agent) -> AgentRegistration {
        AgentRegistration(agent: agent, exposed: true)
    }

    /// An agent reachable from code only.
    public static func `internal`(_ agent: Agent) -> AgentRegistration {
        AgentRegistration(agent: agent, exposed: false)
    }
}

/// What admitting a prompt hands back.
public struct SubmissionReceipt: Sendable, Hashable {
    public var submissionId: String
    /// The agent instance and session the prompt went to.
    public var key: SessionKey
    /// The instance's event stream, `agents/<name>/<id>`.
    public var streamPath: String { AgentAddress.streamPath(key) }
    /// The stream tail taken just before admission: reading after it shows this prompt's events.
    public var offset: String
    public var acceptedAt: Date
}

/// What `dispatch` hands back: the same receipt for every repeat of a dispatch id.
public struct DispatchReceipt: Sendable, Hashable {
    public var dispatchId: String
    /// The instance's event stream, `agents/<name>/<id>`.
    public var streamPath: String
    public var acceptedAt: Date
}

extension Outcome {
    /// How a settled submission ended: `completed({text, usage, model})` or `failed({type, message, details})`.
    init(settled record: SubmissionRecord) {
        if record.status == .completed {
            self = .completed(record.result ?? .null)
        } else {
            self = .failed(record.error ?? FlueError(.operationFailed, "the submission failed").json)
        }
    }
}

/// Why an agent address was refused (``Engine/instanceKey(agent:id:exposedOnly:)``).
package enum AgentAddressProblem: Error, Sendable {
    /// Not a letter followed by letters, digits, `_` or `-` (64 characters at most).
    case badAgentName
    /// Not 1–256 characters from letters, digits and `._~:@+-`, or `.` / `..`.
    case badInstanceId
    /// No such agent (or, when only exposed agents count, not exposed).
    case unknownAgent
}

/// Instance ids and agent names as they appear in URLs and store paths.
package enum AgentAddress {
    /// Characters allowed in an instance id (no `/`, no spaces): letters, digits and `._~:@+-`;
    /// not `.` or `..`, which are dot-segments that URL clients remove (RFC 3986 §5.2.4), so the
    /// instance's URL could not be followed.
    package static func isValidInstanceId(_ id: String) -> Bool {
        id != "." && id != ".." && isURLSafeId(id)
    }

    /// 1 to 256 characters from ASCII letters, digits and `._~:@+-`: ids that are one URL path
    /// segment as they are (instance ids, run ids).
    package static func isURLSafeId(_ id: String) -> Bool {
        (1...256).contains(id.utf8.count)
            && id.unicodeScalars.allSatisfy { scalar in
                scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || "._~:@+-".unicodeScalars.contains(scalar))
            }
    }

    /// Agent names follow the definition rules: a letter, then letters, digits, `_` or `-`.
    package static func isValidAgentName(_ name: String) -> Bool {
        DefinitionName.isValid(name)
    }

    package static func streamPath(_ key: SessionKey) -> String { "agents/\(key.agent)/\(key.instanceId)" }
}
