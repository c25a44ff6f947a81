import Foundation

/// The tools Flue gives a model over its agent's sandbox.
public enum BuiltinTool: String, Sendable, Hashable, CaseIterable {
    /// Read a file with line numbers, a line range at a time.
    case read
    /// Create or replace a file.
    case write
    /// Replace an exact piece of text in a file (once, unless asked for every occurrence).
    case edit
    /// Search file contents with a regular expression.
    case grep
    /// Find files by name pattern.
    case glob
    /// Run a shell command.
    case bash
}

/// Which built-in tools an agent's model gets when the agent has a sandbox. Every tool offered
/// invites calls, so an agent that only reads can say so.
public enum BuiltinTools: Sendable, Hashable {
    case all
    case none
    case only(Set<BuiltinTool>)

    var selected: [BuiltinTool] {
        switch self {
        case .all: BuiltinTool.allCases
        case .none: []
        case .only(let tools): BuiltinTool.allCases.filter(tools.contains)
        }
    }
}

/// Flue's limits on what one built-in tool call returns: 2,000 lines or 50 KB, whichever comes
/// first, then a note that says what was left out and how to get it. A line longer than 2,000
/// characters is cut (and says so), so one huge line never hides the rest.
enum ToolOutputLimit {
    static let maxLines = 2000
    static let maxBytes = 50 * 1024
    static let maxLineCharacters = 2000

    /// `lines` joined with newlines, cut at the limits (`maxBytes` unless given); `hint` says how
    /// to see more. `truncated` tells whether lines were left out.
    static func apply(_ lines: [String], hint: String, maxBytes: Int = maxBytes) -> (text: String, truncated: Bool) {
        var kept: [String] = []
        var bytes = 0
        for original in lines {
            var line = original
            if line.count > maxLineCharacters {
                line = String(line.prefix(maxLineCharacters)) + " … [line cut at \(maxLineCharacters) characters]"
            }
            let size = line.utf8.count + 1
            if kept.count == maxLines || bytes + size > maxBytes { break }
            kept.append(line)
            bytes += size
        }
        guard kept.count < lines.count else { return (kept.joined(separator: "\n"), false) }
        let note = "[truncated: showing \(kept.count) of \(lines.count) lines (limit \(maxLines) lines / \(maxBytes / 1024) KB); \(hint)]"
        return (kept.isEmpty ? note : kept.joined(separator: "\n") + "\n" + note, true)
    }
}

extension BuiltinTool {
    /// The tools of `selection` over `sandbox`.
    static func tools(_ selection: BuiltinTools, sandbox: any Sandbox) throws -> [any Tool] {
        try selection.selected.map { try $0.tool(sandbox) }
    }

    private func tool(_ sandbox: any Sandbox) throws -> any Tool {
        switch self {
        case .read:
            return try FunctionTool(
                name: "read",
                description: "Read a text file from the workspace. Lines come numbered; read a long file in ranges "
                    + "with offset (first line, from 1) and limit (number of lines, at most 2000)."
            ) { (args: ReadArguments) in try await BuiltinTool.read(args, sandbox) }
        case .write:
            return try FunctionTool(
                name: "write",
                description: "Create or replace a file in the workspace with the given content (parent directories are created)."
            ) { (args: WriteArguments) in
                try await sandbox.writeText(args.path, args.content)
                return "wrote \(args.content.utf8.count) bytes to \(args.path)"
            }
        case .edit:
            return try FunctionTool(
                name: "edit",
                description: "Replace old_string with new_string in a file. old_string must match the file exactly "
                    + "(whitespace included) and occur once, unless replace_all is true. Read the file first."
            ) { (args: EditArguments) in try await BuiltinTool.edit(args, sandbox) }
        case .grep:
            return try FunctionTool(
                name: "grep",
                description: "Search file contents under a directory (default: the workspace) with a regular "
                    + "expression; answers path:line:text. Narrow it with glob (e.g. *.swift)."
            ) { (args: GrepArguments) in try await BuiltinTool.grep(args, sandbox) }
        case .glob:
            return try FunctionTool(
                name: "glob",
                description: "List files whose path matches a pattern (e.g. **/*.md, src/*.swift), relative to a "
                    + "directory (default: the workspace)."
            ) { (args: GlobArguments) in try await BuiltinTool.glob(args, sandbox) }
        case .bash:
            return try FunctionTool(
                name: "bash",
                description: "Run a shell command in the workspace and get its output and exit code."
            ) { (args: BashArguments) in try await BuiltinTool.bash(args, sandbox) }
        }
    }

    struct ReadArguments: Codable, Sendable {
        var path: String
        var offset: Int?
        var limit: Int?
    }

    struct WriteArguments: Codable, Sendable {
        var path: String
        var content: String
    }

    struct EditArguments: Codable, Sendable {
        var path: String
        var old_string: String
        var new_string: String
        var replace_all: Bool?
    }

    struct GrepArguments: Codable, Sendable {
        var pattern: String
        var path: String?
        var glob: String?
        var ignore_case: Bool?
    }

    struct GlobArguments: Codable, Sendable {
        var pattern: String
        var path: String?
    }

    struct BashArguments: Codable, Sendable {
        var command: String
        var timeout_seconds: Int?
    }

    static func read(_ args: ReadArguments, _ sandbox: any Sandbox) async throws -> String {
        let lines = try await sandbox.readText(args.path).splitLines().map(String.init)
        if lines.isEmpty { return "(\(args.path) is empty)" }
        let first = max(1, args.offset ?? 1)
        guard first <= lines.count else {
            throw FlueError(.invalidFileOperation, "\(args.path) has \(lines.count) lines; offset \(first) is past the end")
        }
        let count = min(max(1, args.limit ?? ToolOutputLimit.maxLines), ToolOutputLimit.maxLines)
        let window = lines[(first - 1)..<min(lines.count, first - 1 + count)]
        let numbered = window.enumerated().map { index, line in
            let number = String(first + index)
            return String(repeating: " ", count: max(0, 6 - number.count)) + number + "\t" + line
        }
        let (text, truncated) = ToolOutputLimit.apply(numbered, hint: "read on with a larger offset")
        let last = first - 1 + window.count
        if last < lines.count, !truncated {
            return text + "\n[lines \(first)–\(last) of \(lines.count); read on with offset \(last + 1)]"
        }
        return text
    }

    static func edit(_ args: EditArguments, _ sandbox: any Sandbox) async throws -> String {
        guard !args.old_string.isEmpty else { throw FlueError(.invalidFileOperation, "old_string must not be empty") }
        guard args.old_string != args.new_string else {
            throw FlueError(.invalidFileOperation, "old_string and new_string are the same; nothing to change")
        }
        var occurrences = 0
        // One step: a parallel edit of the same file cannot land between the read and the write.
        try await sandbox.updateText(args.path) { text in
            occurrences = text.components(separatedBy: args.old_string).count - 1
            guard occurrences > 0 else {
                throw FlueError(
                    .invalidFileOperation,
                    "old_string was not found in \(args.path); read the file and copy the text exactly, whitespace included")
            }
            guard occurrences == 1 || args.replace_all == true else {
                throw FlueError(
                    .invalidFileOperation,
                    "old_string occurs \(occurrences) times in \(args.path); include more surrounding text to make it "
                        + "unique, or set replace_all to true")
            }
            return text.replacingOccurrences(of: args.old_string, with: args.new_string)
        }
        return "edited \(args.path): \(occurrences) replacement\(occurrences == 1 ? "" : "s")"
    }

    /// Every file at or below `root` (absolute paths, sorted), walked through the protocol.
    static func files(under root: String, _ sandbox: any Sandbox) async throws -> [String] {
        guard let info = try await sandbox.stat(root) else {
            throw FlueError(.fileNotFound, "\(root): no such file or directory")
        }
        guard info.isDirectory else { return [root] }
        var found: [String] = []
        var pending = [root]
        while let directory = pending.popLast() {
            for entry in try await sandbox.list(directory) {
                let path = (directory == "/" ? "" : directory) + "/" + entry.name
                if entry.isDirectory { pending.append(path) } else { found.append(path) }
            }
        }
        return found.sorted()
    }

    /// How a path is shown to the model: relative to the working directory when below it.
    static func shown(_ path: String, _ sandbox: any Sandbox) -> String {
        let cwd = sandbox.workingDirectory
        return path.hasPrefix(cwd + "/") ? String(path.dropFirst(cwd.count + 1)) : path
    }

    static func grep(_ args: GrepArguments, _ sandbox: any Sandbox) async throws -> String {
        let regex: Regex<AnyRegexOutput>
        do {
            let compiled = try Regex(args.pattern)
            regex = args.ignore_case == true ? compiled.ignoresCase() : compiled
        } catch {
            throw FlueError(.invalidFileOperation, "pattern \(args.pattern) is not a valid regular expression: \(error)")
        }
        let root = try SandboxPath.resolve(args.path ?? ".", from: sandbox.workingDirectory)
        var matches: [String] = []
        var skipped: [String] = []
        let deadline = ContinuousClock.now + .seconds(30)
        for file in try await files(under: root, sandbox) {
            guard ContinuousClock.now < deadline, matches.count <= ToolOutputLimit.maxLines else {
                matches.append("[search stopped early (30 s or \(ToolOutputLimit.maxLines) matches); narrow the pattern, path or glob]")
                break
            }
            let shown = shown(file, sandbox)
            if let glob = args.glob, !Glob.matches(shown, glob), !Glob.matches(SandboxPath.name(file), glob) { continue }
            let data: Data
            do {
                data = try await sandbox.readFile(file)
            } catch let error as FlueError where file != root {
                // A link to a directory or out of the sandbox, a device: skip it, say so below.
                skipped.append("\(shown) (\(error.kind))")
                continue
            }
            guard !data.contains(0) else { continue }  // binary
            for (number, line) in String(decoding: data, as: UTF8.self).splitLines().enumerated()
            where (try? regex.firstMatch(in: line)) != nil {
                matches.append("\(shown):\(number + 1):\(line)")
            }
        }
        let note =
            skipped.isEmpty
            ? "" : "\n[\(skipped.count) file(s) could not be read and were skipped: "
                + skipped.prefix(5).joined(separator: ", ") + (skipped.count > 5 ? ", …" : "") + "]"
        if matches.isEmpty { return "no matches for \(args.pattern)" + note }
        return ToolOutputLimit.apply(matches, hint: "narrow the pattern, path or glob").text + note
    }

    static func glob(_ args: GlobArguments, _ sandbox: any Sandbox) async throws -> String {
        let root = try SandboxPath.resolve(args.path ?? ".", from: sandbox.workingDirectory)
        let prefix = root == "/" ? "/" : root + "/"
        let matches = try await files(under: root, sandbox).filter { Glob.matches(String($0.dropFirst(prefix.count)), args.pattern) }
            .map { shown($0, sandbox) }
        if matches.isEmpty { return "no files match \(args.pattern)" }
        return ToolOutputLimit.apply(matches, hint: "use a narrower pattern or path").text
    }

    static func bash(_ args: BashArguments, _ sandbox: any Sandbox) async throws -> String {
        let seconds = min(max(1, args.timeout_seconds ?? 120), 600)
        let result = try await sandbox.exec(
            args.command, options: ExecOptions(timeout: .seconds(seconds), outputLimit: ToolOutputLimit.maxBytes))
        // stdout and stderr get their own budgets (40 + 10 KB), and the exit code always shows.
        var parts: [String] = []
        if !result.stdout.isEmpty {
            parts.append(
                ToolOutputLimit.apply(
                    result.stdout.splitLines().map(String.init), hint: "filter the output (head, grep)", maxBytes: 40 * 1024
                ).text)
        }
        if !result.stderr.isEmpty {
            parts.append(
                "[stderr]\n"
                    + ToolOutputLimit.apply(result.stderr.splitLines().map(String.init), hint: "stderr cut", maxBytes: 10 * 1024).text)
        }
        parts.append("[exit code \(result.exitCode)]")
        return parts.joined(separator: "\n")
    }
}
