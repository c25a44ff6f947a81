import FluePersistence
import FlueRuntime
import Foundation

/// The stored input of a submission and how it becomes a user message.
package enum AgentInput {
    /// The stored input of a direct prompt: `{message, images?, budget?}` (`images` only when
    /// there are some, `budget` only when it limits something).
    package static func direct(message: String, images: [ImageContent], budget: Budget? = nil) -> JSONValue {
        var input: [String: JSONValue] = ["message": .string(message)]
        // Budget's Codable form leaves unset limits out: `{maxTurns?, maxTokens?}`.
        if let budget, budget != .unlimited { input["budget"] = try? JSONValue(encoding: budget) }
        if !images.isEmpty {
            input["images"] = .array(
                images.map { ["type": "image", "data": .string($0.data), "mimeType": .string($0.mimeType)] })
        }
        return .object(input)
    }

    /// The per-submission budget a direct prompt carries.
    static func budget(for record: SubmissionRecord) -> Budget? {
        guard record.kind == .direct else { return nil }
        return try? record.input["budget"]?.decode(Budget.self)
    }

    /// The user message text and images a submission puts into the conversation.
    static func message(for record: SubmissionRecord) -> (text: String, images: [ImageContent]) {
        switch record.kind {
        case .direct:
            let images = (record.input["images"]?.arrayValue ?? []).compactMap { image -> ImageContent? in
                guard let data = image["data"]?.stringValue, let mimeType = image["mimeType"]?.stringValue else { return nil }
                return ImageContent(data: data, mimeType: mimeType)
            }
            return (record.input["message"]?.stringValue ?? "", images)
        case .dispatch:
            let accepted = FlueEvent.formatTimestamp(record.acceptedAt)
            let text = """
                <dispatch type="dispatch_input" agent="\(record.key.agent)" id="\(record.key.instanceId)" \
                session="\(record.key.session)" dispatchId="\(record.submissionId)" acceptedAt="\(accepted)">
                \(record.input.prettySortedJSON)
                </dispatch>
                """
            return (text, [])
        }
    }
}
