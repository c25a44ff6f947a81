import FluePersistence
import FlueRuntime
import Foundation

/// The body of `POST /agents/:name/:id` and how a stored submission input becomes a user message.
enum AgentInput {
    /// The largest accepted image, in base64 characters (14 MiB).
    static let maxImageCharacters = 14_680_064

    static let shapeMessage =
        "Direct agent requests must use JSON object body { \"message\": string, \"images\"?: image[] }, "
        + "where an image is { \"type\": \"image\", \"data\": base64 string, \"mimeType\": string }."

    /// Validates a direct prompt body and returns the stored input `{message, images?}` (unknown
    /// keys dropped).
    static func validateDirect(_ body: JSONValue) throws -> JSONValue {
        guard case .object(let object) = body, case .string(let message)? = object["message"] else {
            throw FlueHTTPError.invalidRequest(shapeMessage)
        }
        var images: [ImageContent] = []
        if let value = object["images"], value != .null {
            guard case .array(let items) = value else { throw FlueHTTPError.invalidRequest(shapeMessage) }
            for item in items {
                guard item["type"] == "image", let data = item["data"]?.stringValue,
                    let mimeType = item["mimeType"]?.stringValue
                else { throw FlueHTTPError.invalidRequest(shapeMessage) }
                guard data.utf8.count <= maxImageCharacters else {
                    throw FlueHTTPError.invalidRequest("Image data exceeds the \(maxImageCharacters) character limit.")
                }
                images.append(ImageContent(data: data, mimeType: mimeType))
            }
        }
        return direct(message: message, images: images)
    }

    /// The stored input of a direct prompt: `{message, images?}` (`images` only when there are some).
    static func direct(message: String, images: [ImageContent]) -> JSONValue {
        var input: [String: JSONValue] = ["message": .string(message)]
        if !images.isEmpty {
            input["images"] = .array(
                images.map { ["type": "image", "data": .string($0.data), "mimeType": .string($0.mimeType)] })
        }
        return .object(input)
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
            let accepted = ISO8601DateFormatter.flueMilliseconds.string(from: record.acceptedAt)
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

extension ISO8601DateFormatter {
    /// `2026-11-30T12:00:00.123Z`.
    static var flueMilliseconds: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}

extension JSONValue {
    /// Indented JSON with sorted keys (how dispatch inputs are shown to the model).
    var prettySortedJSON: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? jsonString
    }
}
