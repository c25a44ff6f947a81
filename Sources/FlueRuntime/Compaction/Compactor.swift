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
    /// Characters of one tool result, and of one tool call's arguments, the summariser sees.
    static let toolResultCharacters = 2_000
    /// Characters of one user or assistant text the summariser sees.
    static let textCharacters = 8_000

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
    /// message, tool calls as `name(arguments)`; texts are cut at 8 000 characters, tool
    /// arguments and results at 2 000. Beyond `maxCharacters` in all, the middle is left out
    /// (the start and the most recent part stay) and says how many messages it held.
    static func transcript(_ messages: some Collection<Message>, maxCharacters: Int? = nil) -> String {
        let paragraphs = messages.map { message -> String in
            switch message {
            case .user(let text, let images):
                return "[User]: " + cut(text, textCharacters) + (images.isEmpty ? "" : " [\(images.count) image(s)]")
            case .assistant(let assistant):
                var parts: [String] = []
                if !assistant.text.isEmpty { parts.append("[Assistant]: " + cut(assistant.text, textCharacters)) }
                let calls = assistant.toolCalls.map { "\($0.name)(\(cut($0.arguments.jsonString, toolResultCharacters)))" }
                if !calls.isEmpty { parts.append("[Assistant tool calls]: " + calls.joined(separator: "; ")) }
                return parts.joined(separator: "\n")
            case .toolResult(let result):
                return "[Tool result \(result.toolName)\(result.isError ? ", error" : "")]: "
                    + cut(result.content, toolResultCharacters)
            }
        }
        let separator = "\n\n"
        let total = paragraphs.reduce(0) { Usage.saturatingSum($0, $1.count + separator.count) }
        guard let maxCharacters, total > maxCharacters, paragraphs.count > 2 else {
            return paragraphs.joined(separator: separator)
        }
        // Keep a third of the budget for the start and the rest for the most recent messages.
        var head: [String] = []
        var used = 0
        for paragraph in paragraphs {
            guard used + paragraph.count <= maxCharacters / 3 else { break }
            head.append(paragraph)
            used += paragraph.count + separator.count
        }
        var tail: [String] = []
        for paragraph in paragraphs[head.count...].reversed() {
            guard used + paragraph.count <= maxCharacters else { break }
            tail.insert(paragraph, at: 0)
            used += paragraph.count + separator.count
        }
        let omitted = paragraphs.count - head.count - tail.count
        guard omitted > 0 else { return paragraphs.joined(separator: separator) }
        return (head + ["[… \(omitted) message(s) left out to fit the summariser's context …]"] + tail)
            .joined(separator: separator)
    }

    /// `text` cut to `limit` characters, marked when cut.
    static func cut(_ text: String, _ limit: Int) -> String {
        text.count > limit ? String(text.prefix(limit)) + " [… cut]" : text
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
