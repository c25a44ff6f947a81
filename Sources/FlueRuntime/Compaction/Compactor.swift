import Foundation

/// Why a compaction runs (`compaction_start.reason`).
enum CompactionTrigger: String, Sendable {
    /// The estimated context passed the agent's threshold before a model request.
    case threshold
    /// The provider answered `context_window_exceeded`.
    case overflow
    /// ``Session/compact()``.
    case manual
}

/// The arithmetic and the text of compaction: token estimates, where to cut, the transcript the
/// summarising model reads. Pure functions; ``Session`` runs the model call and saves the result.
enum Compactor {
    /// Tokens an image is counted as (Flue's estimate).
    static let imageTokens = 1_200
    /// Characters of one tool result the summariser sees.
    static let toolResultCharacters = 2_000

    /// A rough token count of text: a token per 4 UTF-8 bytes, rounded up.
    static func tokens(_ text: String) -> Int { (text.utf8.count + 3) / 4 }

    /// A rough token count of one message.
    static func tokens(of message: Message) -> Int {
        switch message {
        case .user(let text, let images):
            return tokens(text) + images.count * imageTokens
        case .assistant(let assistant):
            return assistant.content.reduce(0) { sum, block in
                switch block {
                case .text(let text): sum + tokens(text)
                case .thinking(let text, _): sum + tokens(text)
                case .toolCall(let call): sum + tokens(call.name) + tokens(call.arguments.jsonString)
                }
            }
        case .toolResult(let result):
            return tokens(result.content) + tokens(result.toolName)
        }
    }

    static func tokens(of messages: some Collection<Message>) -> Int {
        messages.reduce(0) { Usage.saturatingSum($0, tokens(of: $1)) }
    }

    /// Where the kept part of `messages` starts when everything from `start` on may be
    /// summarised: about `keepRecentTokens` of the newest messages stay, the cut never falls on a
    /// tool result (a call and its result stay together), and the newest message always stays.
    /// `nil` when nothing before the cut is left to summarise.
    static func cutIndex(_ messages: [Message], from start: Int, keepRecentTokens: Int) -> Int? {
        guard start >= 0, messages.count - start >= 2 else { return nil }
        var cut = messages.count - 1
        var kept = tokens(of: messages[cut])
        while cut > start, kept < keepRecentTokens {
            cut -= 1
            kept = Usage.saturatingSum(kept, tokens(of: messages[cut]))
        }
        while cut > start, case .toolResult = messages[cut] { cut -= 1 }
        return cut > start ? cut : nil
    }

    /// The summarised messages as plain text for the summariser: one labelled paragraph per
    /// message, tool calls as `name(arguments)`, tool results cut at 2 000 characters.
    static func transcript(_ messages: some Collection<Message>) -> String {
        messages.map { message -> String in
            switch message {
            case .user(let text, let images):
                return "[User]: " + text + (images.isEmpty ? "" : " [\(images.count) image(s)]")
            case .assistant(let assistant):
                var parts: [String] = []
                if !assistant.text.isEmpty { parts.append("[Assistant]: " + assistant.text) }
                let calls = assistant.toolCalls.map { "\($0.name)(\($0.arguments.jsonString))" }
                if !calls.isEmpty { parts.append("[Assistant tool calls]: " + calls.joined(separator: "; ")) }
                return parts.joined(separator: "\n")
            case .toolResult(let result):
                let content =
                    result.content.count > toolResultCharacters
                    ? String(result.content.prefix(toolResultCharacters)) + " [… cut]" : result.content
                return "[Tool result \(result.toolName)\(result.isError ? ", error" : "")]: " + content
            }
        }.joined(separator: "\n\n")
    }

    /// Sandbox paths the built-in file tools read and changed in `messages`, each sorted.
    static func files(_ messages: some Collection<Message>) -> (read: [String], modified: [String]) {
        var read = Set<String>()
        var modified = Set<String>()
        for case .assistant(let assistant) in messages {
            for call in assistant.toolCalls {
                guard let path = call.arguments["path"]?.stringValue else { continue }
                switch call.name {
                case "read": read.insert(path)
                case "write", "edit": modified.insert(path)
                default: break
                }
            }
        }
        return (read.sorted(), modified.sorted())
    }

    static let systemPrompt =
        "You write checkpoint summaries of an autonomous agent's work. The summary replaces the older part of "
        + "the agent's conversation, so it must hold everything the agent needs to carry on: be specific, keep "
        + "file paths, names, numbers, decisions, errors and open problems. Do not continue the conversation "
        + "and do not call tools."

    /// The request text: the earlier summary (when one exists, to be merged), the transcript,
    /// and the sections the summary must have.
    static func prompt(transcript: String, previousSummary: String?) -> String {
        var text = ""
        if let previousSummary {
            text +=
                "An earlier summary covers the start of the conversation; merge it with the messages below into "
                + "one summary.\n<earlier_summary>\n\(previousSummary)\n</earlier_summary>\n\n"
        }
        text += "<conversation>\n\(transcript)\n</conversation>\n\n"
        text +=
            "Summarise the conversation above under these headings, in this order:\n"
            + "## Goal\n## Constraints\n## Progress\n## Key decisions\n## Next steps\n## Critical context"
        return text
    }
}
