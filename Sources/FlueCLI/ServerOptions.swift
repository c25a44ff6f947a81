import ArgumentParser
import FlueClient
import Foundation

/// Where the server is and what to send with every request (shared by `logs`, `invoke`, `prompt`).
struct ServerOptions: ParsableArguments {
    @Option(help: "The server's URL, mount prefix included (default: $FLUE_URL, else http://127.0.0.1:3000).")
    var url: String?

    @Option(
        name: .customLong("header"),
        help: ArgumentHelp("A request header, `Name: value` (repeatable), e.g. --header 'Authorization: Bearer …'.",
                           valueName: "header"))
    var headers: [String] = []

    func validate() throws {
        _ = try parsedHeaders()
    }

    func parsedHeaders() throws -> [String: String] {
        // (Values are checked too: a CR or LF would be refused by the HTTP client only at send time.)
        var result: [String: String] = [:]
        for header in headers {
            guard let colon = header.firstIndex(of: ":") else {
                throw ValidationError("--header must be `Name: value`, got \"\(header)\"")
            }
            let name = header[..<colon].trimmingCharacters(in: .whitespaces)
            let value = header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            // RFC 9110 §5.6.2: a field name is a token.
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "!#$%&'*+-.^_`|~".contains($0)) })
            else {
                throw ValidationError("--header name must be a token such as Authorization, got \"\(name)\"")
            }
            guard value.unicodeScalars.allSatisfy({ $0 == "\t" || ($0.value >= 0x20 && $0.value != 0x7F) }) else {
                throw ValidationError("--header \(name) has a control character in its value")
            }
            guard result[name.lowercased()] == nil else { throw ValidationError("--header \(name) is given twice") }
            result[name.lowercased()] = value
        }
        return result
    }

    /// The options to repeat in a suggested command (never the headers: they may hold credentials).
    var repeatedOptions: String {
        url.map { " --url \($0)" } ?? ""
    }

    func client() throws -> FlueClient {
        let environment = ProcessInfo.processInfo.environment["FLUE_URL"].flatMap { $0.isEmpty ? nil : $0 }
        let base = url ?? environment ?? "http://127.0.0.1:3000"
        let source = url != nil ? "--url" : environment != nil ? "FLUE_URL" : "the default URL"
        guard let parsed = URL(string: base), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host != nil,
            parsed.query == nil, parsed.fragment == nil
        else {
            throw ValidationError("\(source) must be an http(s) URL without query or fragment, got \"\(base)\"")
        }
        return FlueClient(baseURL: base, headers: try parsedHeaders())
    }
}

/// Writes to stdout; a reader that went away (`flue logs … | head`) ends the command quietly
/// instead of trapping on the broken pipe.
func emit(_ text: String) {
    do {
        try FileHandle.standardOutput.write(contentsOf: Data(text.utf8))
    } catch {
        exit(0)
    }
}

/// How a command failed, as an exit code: 1 for a request that failed, 2 for work that failed.
enum Exit {
    static let requestFailed: Int32 = 1
    static let workFailed: Int32 = 2

    /// Prints `error` to stderr and returns the exit code for it. `waited`: the request waited
    /// for the work (`?wait=result`), so a `500` from the server is the work failing.
    static func report(_ error: any Error, waited: Bool = false, resume: String? = nil) -> ExitCode {
        var message = "flue: \(error)\n"
        if case .streamInterrupted(let offset, _)? = error as? FlueClientError, let resume {
            message += "flue: to read on from there: \(resume) --from=\(offset)\n"
        }
        FileHandle.standardError.write(Data(message.utf8))
        if let api = (error as? FlueClientError)?.apiError {
            if api.kind == .failed || (waited && api.fromEnvelope && api.status == 500) { return ExitCode(workFailed) }
        }
        return ExitCode(requestFailed)
    }
}
