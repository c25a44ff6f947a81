import Foundation

/// The summary that stands in for the older part of a session's history
/// (``SessionSnapshot/compaction``). The full history stays in ``SessionSnapshot/messages``;
/// only the context sent to the model (``SessionSnapshot/contextMessages``) is shortened, so
/// recovery, audits and exports still see every message.
public struct CompactionRecord: Sendable, Hashable, Codable {
    /// The model's summary of everything before `firstKeptIndex`.
    public var summary: String
    /// Index in `messages` of the first message sent verbatim after the summary.
    public var firstKeptIndex: Int
    /// Estimated context tokens when compaction started.
    public var tokensBefore: Int
    /// Sandbox paths the summarised part read (`read` tool calls), sorted.
    public var readFiles: [String]
    /// Sandbox paths the summarised part wrote or edited (`write`, `edit`), sorted.
    public var modifiedFiles: [String]
    /// What the summary call cost.
    public var usage: Usage
    public var createdAt: Date

    public init(
        summary: String, firstKeptIndex: Int, tokensBefore: Int, readFiles: [String] = [], modifiedFiles: [String] = [],
        usage: Usage = Usage(), createdAt: Date = Date()
    ) {
        self.summary = summary
        self.firstKeptIndex = firstKeptIndex
        self.tokensBefore = tokensBefore
        self.readFiles = readFiles
        self.modifiedFiles = modifiedFiles
        self.usage = usage
        self.createdAt = createdAt
    }

    /// The user message that carries the summary at the head of the context.
    public var message: Message {
        var text =
            "[The earlier part of this conversation was compacted to save context. This summary replaces it; "
            + "the messages after it are verbatim.]\n<compaction_summary>\n\(summary)\n</compaction_summary>"
        if !readFiles.isEmpty { text += "\nFiles read: " + readFiles.joined(separator: ", ") }
        if !modifiedFiles.isEmpty { text += "\nFiles modified: " + modifiedFiles.joined(separator: ", ") }
        return .user(text: text, images: [])
    }
}

extension SessionSnapshot {
    /// What the model is sent: the compaction summary (when there is one) followed by the
    /// messages from ``CompactionRecord/firstKeptIndex`` on; otherwise every message.
    public var contextMessages: [Message] {
        guard let compaction, compaction.firstKeptIndex >= 0, compaction.firstKeptIndex <= messages.count else {
            return messages
        }
        return [compaction.message] + messages[compaction.firstKeptIndex...]
    }
}
