import FlueRuntime
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Reads a JSON request body under a size limit, with Flue's rules: no body (or
/// `Content-Length: 0`) is `{}`; otherwise the content type must contain `application/json`
/// (415), the body must fit the limit (413) and parse (400 `invalid_json`).
enum JSONBody {
    static func read(_ request: Request, limit: Int) async throws -> JSONValue {
        let contentLength = request.headers[.contentLength].flatMap(Int.init)
        let contentType = request.headers[.contentType]
        if contentLength == 0 || (contentLength == nil && contentType == nil && request.headers[.transferEncoding] == nil) {
            return [:]
        }
        guard let contentType, contentType.lowercased().contains("application/json") else {
            let received = contentType.map { "Received Content-Type: \"\($0)\"." } ?? "No Content-Type header was sent."
            throw FlueHTTPError(
                .unsupportedMediaType, type: "unsupported_media_type",
                message: "Request body must be sent as application/json.",
                details: received + "\nSend a JSON body with Content-Type: application/json, or omit both the body and the Content-Type.")
        }
        if let contentLength, contentLength > limit { throw tooLarge(limit) }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw tooLarge(limit)
        } catch {
            // A malformed chunked encoding, or the connection ended before the body did.
            throw FlueHTTPError.invalidRequest("The request body could not be read: it is malformed or ended early.")
        }
        let data = Data(buffer.readableBytesView)
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return [:] }
        do {
            return try JSONValue(parsing: data)
        } catch {
            throw FlueHTTPError(
                .badRequest, type: "invalid_json", message: "Request body is not valid JSON.",
                details: "The JSON parser reported: \(JSONValue.parseFailureReason(data))\nCheck the body is well-formed JSON.")
        }
    }

    static func tooLarge(_ limit: Int) -> FlueHTTPError {
        FlueHTTPError(
            .contentTooLarge, type: "payload_too_large", message: "Request body is too large.",
            details: "The limit is \(limit) bytes.")
    }
}
