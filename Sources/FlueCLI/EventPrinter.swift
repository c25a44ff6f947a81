import FlueClient
import FlueRuntime
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Renders events for a terminal (`--format pretty`) or as one JSON object per line (`ndjson`).
///
/// Pretty: text deltas joined into lines; thinking dimmed; one line per finished tool call with
/// its duration; log records with their level; run and submission endings; approvals; at the end
/// the usage summed over the model turns. Colour only when the output is a terminal and
/// `NO_COLOR` is unset.
final class EventPrinter {
    enum Format: String, CaseIterable {
        case pretty, ndjson
    }

    let format: Format
    let colour: Bool
    private let write: (String) -> Void
    private var line = ""
    private var thinking = false
    private var usage = Usage()
    private var turns = 0
    private(set) var failed = false

    init(format: Format, colour: Bool, write: @escaping (String) -> Void) {
        self.format = format
        self.colour = colour
        self.write = write
    }

    /// Whether the process writes to a terminal that wants colour.
    static func wantsColour() -> Bool {
        // no-color.org: any non-empty NO_COLOR turns colour off.
        isatty(STDOUT_FILENO) == 1 && (ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty
    }

    func print(_ streamed: StreamedEvent) {
        noteFailure(streamed.json)
        switch format {
        case .ndjson:
            write(streamed.json.jsonString + "\n")
        case .pretty:
            pretty(streamed)
        }
    }

    /// Whether the event says the work failed: a run that ended in error, a submission that
    /// did not complete.
    private func noteFailure(_ json: JSONValue) {
        switch json["type"]?.stringValue {
        case "run_end": if json["isError"] == .bool(true) { failed = true }
        case "submission_settled": if json["outcome"]?.stringValue != "completed" { failed = true }
        default: break
        }
    }

    /// Flushes text not yet ended by a newline, and prints the usage summary.
    func finish() {
        guard format == .pretty else { return }
        flushText()
        if turns > 0 {
            write(
                dim("usage: \(turns) turn\(turns == 1 ? "" : "s"), input \(usage.input), output \(usage.output)"
                    + (usage.cacheRead + usage.cacheWrite > 0 ? ", cache read \(usage.cacheRead), cache write \(usage.cacheWrite)" : ""))
                    + "\n")
        }
    }

    private func pretty(_ streamed: StreamedEvent) {
        guard let event = streamed.event else {
            flushText()
            write(dim("\(streamed.type)") + "\n")
            return
        }
        switch event.body {
        case .textDelta(let delta):
            if thinking { flushText() }
            thinking = false
            text(delta.delta)
        case .thinkingDelta(let delta):
            if !thinking { flushText() }
            thinking = true
            text(delta.delta)
        case .thinkingStart, .thinkingEnd, .turnStart, .operationStart, .agentStart, .agentEnd, .idle, .taskStart:
            break
        case .turn(let turn):
            flushText()
            // Server-sent numbers: add without trapping.
            usage.input = Self.sum(usage.input, turn.usage.input)
            usage.output = Self.sum(usage.output, turn.usage.output)
            usage.cacheRead = Self.sum(usage.cacheRead, turn.usage.cacheRead)
            usage.cacheWrite = Self.sum(usage.cacheWrite, turn.usage.cacheWrite)
            turns = Self.sum(turns, 1)
            if turn.isError { write(red("turn error: \(Self.describe(turn.error))") + "\n") }
        case .toolStart:
            flushText()
        case .tool(let tool):
            flushText()
            let outcome = tool.isError ? red("error") : "ok"
            var detail = ""
            if tool.isError { detail = " " + Self.oneLine(tool.result, limit: 200) }
            write(dim("tool ") + bold(tool.toolName) + " \(outcome) " + dim("(\(Self.duration(tool.durationMs)))") + detail + "\n")
        case .log(let record):
            flushText()
            let level = record.level.rawValue
            write(dim(level) + " " + record.message + "\n")
        case .runStart(let start):
            write(dim("run ") + bold(start.workflowName) + dim(" \(event.correlation.runId ?? "")") + "\n")
        case .runResume(let resume):
            flushText()
            write(dim("run resumed: \(resume.reason)") + "\n")
        case .runEnd(let end):
            flushText()
            if end.isError {
                write(red("run failed") + ": \(Self.describe(end.error)) " + dim("(\(Self.duration(end.durationMs)))") + "\n")
            } else {
                write(bold("run completed") + " " + dim("(\(Self.duration(end.durationMs)))") + "\n")
                if let result = end.result { write(result.jsonString + "\n") }
            }
        case .operation(let operation):
            flushText()
            if operation.isError { write(red("\(operation.operationKind.rawValue) failed") + ": \(Self.describe(operation.error))\n") }
        case .task(let task):
            flushText()
            write(dim("task \(task.isError ? "failed" : "done") (\(Self.duration(task.durationMs)))") + "\n")
        case .compactionStart(let start):
            flushText()
            write(dim("compacting (\(start.reason), ~\(start.estimatedTokens) tokens)") + "\n")
        case .compaction(let done):
            flushText()
            write(dim("compacted: \(done.messagesBefore) → \(done.messagesAfter) messages") + "\n")
        case .submissionSettled(let settled):
            flushText()
            let id = event.correlation.submissionId ?? ""
            switch settled.outcome {
            case .completed: write(bold("submission completed") + dim(" \(id)") + "\n")
            case .failed, .aborted:
                write(red("submission \(settled.outcome.rawValue)") + dim(" \(id)") + ": \(Self.describe(settled.error))\n")
            }
        case .approvalRequested(let request):
            flushText()
            write(
                bold("approval needed") + ": \(request.tool) " + Self.oneLine(request.arguments.jsonString, limit: 300) + "\n"
                    + dim("  decide: flue decide <agent>/\(event.correlation.instanceId ?? "<id>") \(request.callId) approve|deny"
                        + "   (expires \(request.expiresAt))") + "\n")
        case .approvalDecided(let decided):
            flushText()
            write(dim("\(decided.decision == "approve" ? "approved" : "denied"): call \(decided.callId)") + "\n")
        }
    }

    private func text(_ delta: String) {
        let parts = delta.split(separator: "\n", omittingEmptySubsequences: false)
        for (index, part) in parts.enumerated() {
            line += part
            if index < parts.count - 1 { flushLine() }
        }
    }

    private func flushText() {
        if !line.isEmpty { flushLine() }
    }

    private func flushLine() {
        write((thinking ? dim(line) : line) + "\n")
        line = ""
    }

    /// `a + b`, saturating at the bounds of `Int`.
    static func sum(_ a: Int, _ b: Int) -> Int {
        let (value, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : value
    }

    static func describe(_ error: JSONValue?) -> String {
        guard let error else { return "unknown error" }
        let type = error["type"]?.stringValue.map { "[\($0)] " } ?? ""
        return type + (error["message"]?.stringValue ?? error.jsonString)
    }

    static func duration(_ milliseconds: Int) -> String {
        milliseconds < 1000 ? "\(milliseconds) ms" : String(format: "%.2f s", Double(milliseconds) / 1000)
    }

    static func oneLine(_ text: String, limit: Int) -> String {
        let flat = text.replacingOccurrences(of: "\n", with: " ")
        return flat.count > limit ? String(flat.prefix(limit)) + "…" : flat
    }

    private func dim(_ text: String) -> String { colour ? "\u{1B}[2m\(text)\u{1B}[0m" : text }
    private func bold(_ text: String) -> String { colour ? "\u{1B}[1m\(text)\u{1B}[0m" : text }
    private func red(_ text: String) -> String { colour ? "\u{1B}[31m\(text)\u{1B}[0m" : text }
}
