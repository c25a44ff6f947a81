import FlueEngine
import FlueRuntime
import Foundation

/// The body of `POST /agents/:name/:id`: `{message, images?}`, validated into the stored input.
enum AgentPromptBody {
    /// The largest accepted image, in base64 characters (14 MiB).
    static let maxImageCharacters = 14_680_064

    /// The image types both providers accept (Anthropic Messages and OpenAI Chat Completions).
    static let imageTypes: Set<String> = ["image/jpeg", "image/png", "image/gif", "image/webp"]

    /// Standard base64 with padding, as the OpenAPI document states it (what `Data(base64Encoded:)`
    /// accepts).
    static let base64Pattern = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"

    static let shapeMessage =
        "Direct agent requests must use JSON object body { \"message\": string, \"images\"?: image[], "
        + "\"budget\"?: { \"maxTurns\"?: integer, \"maxTokens\"?: integer, \"maxCost\"?: number } }, "
        + "where an image is { \"type\": \"image\", \"data\": base64 string, \"mimeType\": string }."

    /// The largest turn or token limit a budget may state (10^15; the OpenAPI document says the same).
    static let maxBudgetLimit = 1_000_000_000_000_000

    /// A `budget` object: `maxTurns` and `maxTokens`, each an integer of at least 1, and `maxCost`,
    /// US dollars above 0 and at most ``maxBudgetLimit``; nothing else.
    static func budget(_ value: JSONValue?) throws -> Budget? {
        guard let value, value != .null else { return nil }
        guard case .object(let object) = value else { throw FlueHTTPError.invalidRequest(shapeMessage) }
        for name in object.keys where !["maxTurns", "maxTokens", "maxCost"].contains(name) {
            throw FlueHTTPError.invalidRequest(
                "Unknown budget field \"\(name)\"; a budget has maxTurns, maxTokens and maxCost.")
        }
        var maxCost: Double?
        if let field = object["maxCost"], field != .null {
            guard let dollars = field.doubleValue, dollars > 0, dollars <= Double(maxBudgetLimit) else {
                throw FlueHTTPError.invalidRequest("budget.maxCost must be a number of US dollars above 0 and at most \(maxBudgetLimit).")
            }
            maxCost = dollars
        }
        func limit(_ name: String) throws -> Int? {
            guard let field = object[name], field != .null else { return nil }
            guard let number = field.intValue, (1...maxBudgetLimit).contains(number) else {
                throw FlueHTTPError.invalidRequest("budget.\(name) must be an integer from 1 to \(maxBudgetLimit).")
            }
            return number
        }
        return Budget(maxTurns: try limit("maxTurns"), maxTokens: try limit("maxTokens"), maxCost: maxCost)
    }

    /// Validates a prompt body and returns the stored input `{message, images?, budget?}` (unknown
    /// keys dropped). Throws `400 invalid_request` naming the expected shape.
    static func validate(_ body: JSONValue) throws -> JSONValue {
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
                guard imageTypes.contains(mimeType) else {
                    throw FlueHTTPError.invalidRequest(
                        "Image mimeType \"\(mimeType)\" is not supported; use one of "
                            + imageTypes.sorted().joined(separator: ", ") + ".")
                }
                // The providers reject what is not base64 only after the prompt was accepted and queued.
                guard !data.isEmpty, Data(base64Encoded: data) != nil else {
                    throw FlueHTTPError.invalidRequest("Image data must be non-empty standard base64 (RFC 4648 §4).")
                }
                images.append(ImageContent(data: data, mimeType: mimeType))
            }
        }
        return AgentInput.direct(message: message, images: images, budget: try budget(object["budget"]))
    }
}
