import Foundation

/// The shell of a ``VirtualSandbox``: enough to stage and inspect files, never the host's.
///
/// Syntax: words with `'…'`, `"…"` and `\` quoting, `$NAME` / `${NAME}` from the command's
/// environment (an unquoted empty expansion is no word at all), `*` and `?` in unquoted words
/// matched against one directory, pipes `|`, `>`/`>>` (also `1>`, `2>`, `2>>`, `&>`, `2>&1`,
/// `/dev/null`), `<` input, and `&&`, `||`, `;` or a newline between pipelines; `\` before a
/// newline continues the line.
///
/// Commands: `echo [-n] [-e]`, `printf FORMAT [ARG…]` (`%s %d %%`, `\n \t \\`), `cat`,
/// `ls [-a] [-l] [-1]`, `mkdir [-p]`, `touch`, `rm [-r] [-f]`, `cp [-r]`, `mv`, `pwd`, `cd`,
/// `find [PATH…] [-name GLOB] [-type f|d] [-maxdepth N]`, `grep [-i] [-n] [-v] [-c] [-l] [-r] [-F] [-E]
/// PATTERN [FILE…]` (Swift regular expressions), `head`/`tail [-n N]` (`tail -n +N` from line N),
/// `wc [-l] [-w] [-c]`, `sort [-r] [-n] [-u]`, `true`, `false`. An unknown option exits 2; anything
/// else exits 127 with "not supported in the virtual sandbox", which the model can read and work
/// around. A command line that runs past its deadline stops with exit code 124.
struct VirtualShell {
    let sandbox: VirtualSandbox
    var workingDirectory: String
    var environment: [String: String]
    /// When the command line must stop (checked between commands and inside long loops).
    var deadline: ContinuousClock.Instant = .now + .seconds(120)

    static let supported = [
        "cat", "cd", "cp", "echo", "false", "find", "grep", "head", "ls", "mkdir", "mv", "printf", "pwd", "rm",
        "sort", "tail", "touch", "true", "wc",
    ]

    /// The most one command may produce before it stops with an error (a `cat` of a file many
    /// times would otherwise build gigabytes before any output cap applies).
    static let maxCommandOutput = 16 << 20

    struct Output {
        var stdout = ""
        var stderr = ""
        var code: Int32 = 0
    }

    /// A command stopped early: bad usage (exit 2) or the deadline (exit 124).
    struct Stop: Error {
        var message: String
        var code: Int32
    }

    var timedOut: Bool { ContinuousClock.now >= deadline }

    func checkDeadline(_ command: String) throws {
        if timedOut || Task.isCancelled { throw Stop(message: "\(command): stopped: the command line ran past its time limit", code: 124) }
    }

    /// Runs a command line: (stdout, stderr, exit code of the last pipeline run).
    mutating func run(_ line: String) -> (String, String, Int32) {
        let tokens: [Token]
        let pipelines: [([Token], Token)]
        do {
            tokens = try Self.tokenize(line, environment: environment)
            pipelines = try Self.split(tokens)
        } catch {
            return ("", "syntax error: \(error)\n", 2)
        }
        var stdout = ""
        var stderr = ""
        var code: Int32 = 0
        var connector = Token.semicolon
        for (pipeline, next) in pipelines {
            if timedOut || Task.isCancelled {
                return (stdout, stderr + "stopped: the command line ran past its time limit\n", 124)
            }
            let runs = connector == .and ? code == 0 : connector == .or ? code != 0 : true
            if runs {
                let output = runPipeline(pipeline)
                stdout += output.stdout
                stderr += output.stderr
                code = output.code
            }
            connector = next
        }
        return (stdout, stderr, code)
    }

    // MARK: parsing

    enum Token: Equatable {
        case word(String, globbing: Bool)
        case pipe, and, or, semicolon, input
        /// `>`/`>>` of file descriptor 1 or 2, or of both (`&>`, fd 0 here).
        case redirect(fd: Int, append: Bool)
        /// `2>&1` (from 2 to 1) or `1>&2`.
        case duplicate(from: Int, to: Int)
    }

    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    static func tokenize(_ line: String, environment: [String: String]) throws -> [Token] {
        var tokens: [Token] = []
        var word = ""
        var inWord = false
        var quoted = false
        var globbing = false
        var chars = Array(line)
        chars.append(" ")
        var index = 0
        func flush() {
            // An unquoted expansion to nothing is no word (`rm -r $UNSET` does not mean `rm -r ""`).
            if inWord, !word.isEmpty || quoted { tokens.append(.word(word, globbing: globbing)) }
            word = ""
            inWord = false
            quoted = false
            globbing = false
        }
        func variable(at start: Int) -> (String, Int) {
            var end = start + 1
            if end < chars.count, chars[end] == "{" {
                var name = ""
                end += 1
                while end < chars.count, chars[end] != "}" { name.append(chars[end]); end += 1 }
                return (environment[name] ?? "", end + 1)
            }
            var name = ""
            while end < chars.count, chars[end].isLetter || chars[end].isNumber || chars[end] == "_" {
                name.append(chars[end])
                end += 1
            }
            return name.isEmpty ? ("$", start + 1) : (environment[name] ?? "", end)
        }
        func redirect(fd: Int) {
            // At a `>`: `>>` appends, `>&N` duplicates.
            if chars[index + 1] == ">" {
                tokens.append(.redirect(fd: fd, append: true))
                index += 2
            } else if chars[index + 1] == "&", chars[index + 2].isNumber, let target = Int(String(chars[index + 2])) {
                tokens.append(.duplicate(from: fd, to: target))
                index += 3
            } else {
                tokens.append(.redirect(fd: fd, append: false))
                index += 1
            }
        }
        chars.append(" ")  // two sentinels: look-ahead by two never leaves the array
        while index < chars.count {
            let c = chars[index]
            switch c {
            case " ", "\t":
                flush()
                index += 1
            case "\n", "\r\n":
                flush()
                tokens.append(.semicolon)
                index += 1
            case "'":
                inWord = true
                quoted = true
                guard let close = chars[(index + 1)...].firstIndex(of: "'") else { throw ParseError(description: "unterminated '") }
                word += String(chars[(index + 1)..<close])
                index = close + 1
            case "\"":
                inWord = true
                quoted = true
                index += 1
                while true {
                    guard index < chars.count - 2 else { throw ParseError(description: "unterminated \"") }
                    let d = chars[index]
                    if d == "\"" { index += 1; break }
                    if d == "\\", "\"\\$`".contains(chars[index + 1]) {
                        word.append(chars[index + 1])
                        index += 2
                    } else if d == "$" {
                        let (value, end) = variable(at: index)
                        word += value
                        index = end
                    } else {
                        word.append(d)
                        index += 1
                    }
                }
            case "\\":
                let next = chars[index + 1]
                if next == "\n" || next == "\r\n" {
                    index += 2  // a continued line
                } else {
                    inWord = true
                    quoted = true
                    if index + 1 < chars.count - 2 { word.append(next) }
                    index += 2
                }
            case "$":
                inWord = true
                let (value, end) = variable(at: index)
                word += value
                index = end
            case "|":
                flush()
                if chars[index + 1] == "|" { tokens.append(.or); index += 2 } else { tokens.append(.pipe); index += 1 }
            case "&":
                flush()
                if chars[index + 1] == "&" {
                    tokens.append(.and)
                    index += 2
                } else if chars[index + 1] == ">" {
                    index += 1
                    redirect(fd: 0)
                } else {
                    throw ParseError(description: "background jobs (&) are not supported")
                }
            case ";":
                flush()
                tokens.append(.semicolon)
                index += 1
            case ">":
                // `2>` / `1>`: a lone unquoted digit right before `>` names the descriptor.
                if inWord, !quoted, word == "1" || word == "2" {
                    let fd = Int(word)!
                    word = ""
                    inWord = false
                    redirect(fd: fd)
                } else {
                    flush()
                    redirect(fd: 1)
                }
            case "<":
                flush()
                tokens.append(.input)
                index += 1
            default:
                inWord = true
                if c == "*" || c == "?" { globbing = true }
                word.append(c)
                index += 1
            }
        }
        flush()
        return tokens
    }

    /// Pipelines with the connector that follows each; a pipe with nothing after it is an error.
    static func split(_ tokens: [Token]) throws -> [([Token], Token)] {
        var result: [([Token], Token)] = []
        var current: [Token] = []
        for token in tokens {
            switch token {
            case .and, .or, .semicolon:
                if current.last == .pipe { throw ParseError(description: "nothing after |") }
                if !current.isEmpty { result.append((current, token)) }
                current = []
            default: current.append(token)
            }
        }
        if current.last == .pipe || current.first == .pipe { throw ParseError(description: "nothing after |") }
        if !current.isEmpty { result.append((current, .semicolon)) }
        return result
    }

    // MARK: running

    /// Where a command's stdout or stderr goes.
    private enum Sink {
        case file(String, append: Bool)
        case discard
    }

    private mutating func runPipeline(_ tokens: [Token]) -> Output {
        var commands: [[Token]] = [[]]
        for token in tokens {
            if token == .pipe { commands.append([]) } else { commands[commands.count - 1].append(token) }
        }
        var input = ""
        var result = Output()
        for command in commands {
            var args: [String] = []
            var stdoutSink: Sink?
            var stderrSink: Sink?
            var stderrToStdout = false
            var inputPath: String?
            var index = 0
            func target(after index: Int) -> String? {
                guard index + 1 < command.count, case .word(let word, _) = command[index + 1] else { return nil }
                return word
            }
            while index < command.count {
                switch command[index] {
                case .word(let word, let globbing):
                    args += globbing ? expand(word) : [word]
                case .redirect(let fd, let append):
                    guard let file = target(after: index) else {
                        return Output(stdout: result.stdout, stderr: result.stderr + "syntax error: > needs a file\n", code: 2)
                    }
                    let sink: Sink = file == "/dev/null" ? .discard : .file(file, append: append)
                    if fd != 2 { stdoutSink = sink }
                    if fd != 1 { stderrSink = sink }
                    index += 1
                case .duplicate(let from, let to):
                    if from == 2, to == 1 { stderrToStdout = true }
                case .input:
                    guard let file = target(after: index) else {
                        return Output(stdout: result.stdout, stderr: result.stderr + "syntax error: < needs a file\n", code: 2)
                    }
                    inputPath = file
                    index += 1
                default: break
                }
                index += 1
            }
            if let inputPath {
                do { input = String(decoding: try sandbox.readSync(try path(inputPath)), as: UTF8.self) } catch {
                    return Output(stderr: result.stderr + "\(inputPath): \(Self.reason(error))\n", code: 1)
                }
            }
            var output = args.isEmpty ? Output() : execute(args, stdin: input)
            if stderrToStdout {
                output.stdout += output.stderr
                output.stderr = ""
            }
            if let stderrSink, stderrSinkIsStdoutSink(stderrSink, stdoutSink) {
                output.stdout += output.stderr  // `&>` sends both to one file
                output.stderr = ""
            } else if let stderrSink {
                output.stderr = deliver(output.stderr, to: stderrSink, into: &output)
            }
            if let stdoutSink { output.stdout = deliver(output.stdout, to: stdoutSink, into: &output) }
            input = output.stdout
            result.stderr += output.stderr
            result.code = output.code
        }
        result.stdout = input
        return result
    }

    private func stderrSinkIsStdoutSink(_ a: Sink, _ b: Sink?) -> Bool {
        if case .file(let x, _) = a, case .file(let y, _)? = b { return x == y }
        return false
    }

    /// Writes `text` to `sink`; returns what stays on the stream ("" once delivered). A failure
    /// is reported on stderr with exit code 1.
    private func deliver(_ text: String, to sink: Sink, into output: inout Output) -> String {
        guard case .file(let file, let append) = sink else { return "" }
        do {
            let target = try path(file)
            var data = Data(text.utf8)
            if append, let existing = try? sandbox.readSync(target) { data = existing + data }
            try sandbox.writeSync(target, data)
        } catch {
            output.stderr += "\(file): \(Self.reason(error))\n"
            output.code = 1
        }
        return ""
    }

    private func path(_ text: String) throws -> String { try sandbox.resolve(text, from: workingDirectory) }

    /// An unquoted word with `*`/`?` matched against the entries of its directory; unchanged when
    /// nothing matches (as bash does).
    private func expand(_ word: String) -> [String] {
        let slash = word.lastIndex(of: "/")
        let directory = slash.map { word[..<$0].isEmpty ? "/" : String(word[..<$0]) } ?? ""
        let pattern = slash.map { String(word[word.index(after: $0)...]) } ?? word
        guard let base = try? path(directory.isEmpty ? "." : directory),
            let entries = try? sandbox.listSync(base)
        else { return [word] }
        let matches = entries.filter { !$0.name.hasPrefix(".") && Glob.matches($0.name, pattern) }.map {
            directory.isEmpty ? $0.name : (directory == "/" ? "/" : directory + "/") + $0.name
        }
        return matches.isEmpty ? [word] : matches
    }

    static func reason(_ error: any Error) -> String {
        guard let flue = error as? FlueError else { return "\(error)" }
        switch flue.kind {
        case .fileNotFound: return "No such file or directory"
        case .pathOutsideSandbox: return "Outside the sandbox"
        default: return flue.message
        }
    }

    private mutating func execute(_ args: [String], stdin: String) -> Output {
        do {
            try checkDeadline(args[0])
            return try command(args, stdin: stdin)
        } catch let stop as Stop {
            return Output(stderr: stop.message + "\n", code: stop.code)
        } catch {
            return Output(stderr: "\(args[0]): \(Self.reason(error))\n", code: 1)
        }
    }

    private mutating func command(_ args: [String], stdin: String) throws -> Output {
        let name = args[0]
        let rest = Array(args.dropFirst())
        switch name {
        case "echo": return echo(rest)
        case "printf": return printf(rest)
        case "cat": return try cat(rest, stdin: stdin)
        case "ls": return try ls(rest)
        case "mkdir": return try mkdir(rest)
        case "touch": return try touch(rest)
        case "rm": return try rm(rest)
        case "cp": return try copy(rest, move: false)
        case "mv": return try copy(rest, move: true)
        case "pwd": return Output(stdout: workingDirectory + "\n")
        case "cd": return cd(rest)
        case "find": return try find(rest)
        case "grep": return try grep(rest, stdin: stdin)
        case "head", "tail": return try headTail(rest, stdin: stdin, head: name == "head")
        case "wc": return try wc(rest, stdin: stdin)
        case "sort": return try sort(rest, stdin: stdin)
        case "true": return Output()
        case "false": return Output(code: 1)
        default:
            return Output(
                stderr: "\(name): not supported in the virtual sandbox; supported commands: "
                    + Self.supported.joined(separator: ", ") + "\n",
                code: 127)
        }
    }

    /// Flags (`-abc` split into letters, until `--` or the first non-flag) and the operands.
    /// `allowed` are the command's flags, `valued` those that take a value (`-n 5`, `-n5`,
    /// `-5` for `n`); anything else — a long `--option` included — stops the command with exit 2.
    private static func flags(
        _ args: [String], _ command: String, allowed: Set<Character>, taking valued: Set<Character> = []
    ) throws -> (Set<Character>, [Character: String], [String]) {
        var flags = Set<Character>()
        var values: [Character: String] = [:]
        var index = 0
        while index < args.count, args[index].hasPrefix("-"), args[index].count > 1 {
            if args[index] == "--" { index += 1; break }
            if args[index].hasPrefix("--") {
                throw Stop(message: "\(command): option \(args[index]) is not supported in the virtual sandbox", code: 2)
            }
            let letters = Array(args[index].dropFirst())
            if letters.allSatisfy(\.isNumber), valued.contains("n") {
                values["n"] = String(letters)
            } else if let first = letters.first, valued.contains(first) {
                values[first] = letters.count > 1 ? String(letters.dropFirst()) : (index + 1 < args.count ? args[index + 1] : "")
                if letters.count == 1 { index += 1 }
            } else {
                for letter in letters where !allowed.contains(letter) {
                    throw Stop(message: "\(command): option -\(letter) is not supported in the virtual sandbox", code: 2)
                }
                flags.formUnion(letters)
            }
            index += 1
        }
        return (flags, values, Array(args[index...]))
    }

    private func echo(_ args: [String]) -> Output {
        var args = args
        var newline = true
        var escapes = false
        while let first = args.first, first.count > 1, first.hasPrefix("-"), first.dropFirst().allSatisfy({ "neE".contains($0) }) {
            if first.contains("n") { newline = false }
            if first.contains("e") { escapes = true }
            args.removeFirst()
        }
        var text = args.joined(separator: " ")
        if escapes {
            text = text.replacingOccurrences(of: "\\n", with: "\n").replacingOccurrences(of: "\\t", with: "\t")
        }
        return Output(stdout: text + (newline ? "\n" : ""))
    }

    private func printf(_ args: [String]) -> Output {
        guard let format = args.first else { return Output(stderr: "printf: missing format\n", code: 1) }
        var operands = Array(args.dropFirst())
        var out = ""
        // The format is reused while operands remain, as bash does; a pass that takes none ends it.
        var consumed = true
        while consumed {
            let before = operands.count
            var chars = Array(format)[...]
            while let c = chars.popFirst() {
                if c == "\\", let e = chars.popFirst() {
                    out += e == "n" ? "\n" : e == "t" ? "\t" : e == "\\" ? "\\" : "\\\(e)"
                } else if c == "%", let spec = chars.popFirst() {
                    switch spec {
                    case "%": out += "%"
                    case "s", "d": out += operands.isEmpty ? (spec == "d" ? "0" : "") : operands.removeFirst()
                    default: out += "%\(spec)"
                    }
                } else {
                    out.append(c)
                }
            }
            consumed = !operands.isEmpty && operands.count < before
        }
        return Output(stdout: out)
    }

    /// Runs `body` for each operand; a failure is reported as `command: operand: reason` (exit 1)
    /// and the next operand still runs.
    private func each(_ operands: [String], _ command: String, _ body: (String, inout Output) throws -> Void) throws -> Output {
        var output = Output()
        for operand in operands {
            do { try body(operand, &output) } catch let stop as Stop { throw stop } catch {
                output.stderr += "\(command): \(operand): \(Self.reason(error))\n"
                output.code = 1
            }
        }
        return output
    }

    private func cat(_ args: [String], stdin: String) throws -> Output {
        if args.isEmpty { return Output(stdout: stdin) }
        let output = try each(args, "cat") { file, output in
            try checkDeadline("cat")
            guard output.stdout.utf8.count <= Self.maxCommandOutput else {
                throw Stop(message: "cat: output over \(Self.maxCommandOutput >> 20) MiB; stopped", code: 1)
            }
            output.stdout += String(decoding: try sandbox.readSync(try path(file)), as: UTF8.self)
        }
        return output
    }

    private func ls(_ args: [String]) throws -> Output {
        let (flags, _, operands) = try Self.flags(args, "ls", allowed: ["a", "l", "1"])
        var output = Output()
        let targets = operands.isEmpty ? ["."] : operands
        for (index, target) in targets.enumerated() {
            guard let resolved = try? path(target), let info = sandbox.statSync(resolved) else {
                output.stderr += "ls: \(target): No such file or directory\n"
                output.code = 2
                continue
            }
            if targets.count > 1, info.isDirectory { output.stdout += (index > 0 ? "\n" : "") + "\(target):\n" }
            let entries = info.isDirectory
                ? ((try? sandbox.listSync(resolved)) ?? []).filter { flags.contains("a") || !$0.name.hasPrefix(".") }
                : [SandboxEntry(name: target, isDirectory: false)]
            for entry in entries {
                if flags.contains("l") {
                    let size = entry.isDirectory ? 0 : (sandbox.statSync(resolved + "/" + entry.name)?.size ?? info.size)
                    output.stdout += (entry.isDirectory ? "drwxr-xr-x " : "-rw-r--r-- ") + "\(size) \(entry.name)\n"
                } else {
                    output.stdout += entry.name + "\n"
                }
            }
        }
        return output
    }

    private func mkdir(_ args: [String]) throws -> Output {
        let (flags, _, operands) = try Self.flags(args, "mkdir", allowed: ["p"])
        return try each(operands, "mkdir") { dir, _ in
            let resolved = try path(dir)
            if !flags.contains("p") {
                guard sandbox.statSync(SandboxPath.parent(resolved))?.isDirectory == true else {
                    throw FlueError(.fileNotFound, "no parent")
                }
                if sandbox.statSync(resolved) != nil { throw FlueError(.invalidFileOperation, "File exists") }
            }
            try sandbox.makeDirectorySync(resolved)
        }
    }

    private func touch(_ args: [String]) throws -> Output {
        try each(args, "touch") { file, _ in
            let resolved = try path(file)
            if sandbox.statSync(resolved) == nil { try sandbox.writeSync(resolved, Data()) }
        }
    }

    private func rm(_ args: [String]) throws -> Output {
        let (flags, _, operands) = try Self.flags(args, "rm", allowed: ["r", "R", "f"])
        return try each(operands, "rm") { target, _ in
            do {
                try sandbox.removeSync(try path(target), recursive: flags.contains("r") || flags.contains("R"))
            } catch let error as FlueError where error.kind == .fileNotFound && flags.contains("f") {
                return
            }
        }
    }

    private func copy(_ args: [String], move: Bool) throws -> Output {
        let command = move ? "mv" : "cp"
        let (flags, _, operands) = try Self.flags(args, command, allowed: ["r", "R", "f"])
        guard operands.count == 2 else { return Output(stderr: "\(command): give a source and a destination\n", code: 1) }
        do {
            let source = try path(operands[0])
            var destination = try path(operands[1])
            guard let info = sandbox.statSync(source) else { throw FlueError(.fileNotFound, source) }
            guard source != "/" else { return Output(stderr: "\(command): the sandbox root cannot be copied or moved\n", code: 1) }
            if move, sandbox.isWorkingDirectoryOrAncestor(source) {
                return Output(stderr: "mv: \(operands[0]) holds the working directory; it cannot be moved\n", code: 1)
            }
            if sandbox.statSync(destination)?.isDirectory == true {
                destination = (destination == "/" ? "" : destination) + "/" + SandboxPath.name(source)
            }
            if info.isDirectory {
                guard move || flags.contains("r") || flags.contains("R") else {
                    return Output(stderr: "cp: \(operands[0]) is a directory (use -r)\n", code: 1)
                }
                guard destination != source, !destination.hasPrefix(source + "/") else {
                    return Output(stderr: "\(command): cannot copy \(operands[0]) into itself\n", code: 1)
                }
                for (entry, isDirectory) in sandbox.walkSync(source) {
                    try checkDeadline(command)
                    let target = destination + entry.dropFirst(source.count)
                    if isDirectory { try sandbox.makeDirectorySync(target) } else { try sandbox.writeSync(target, try sandbox.readSync(entry)) }
                }
            } else {
                try sandbox.writeSync(destination, try sandbox.readSync(source))
            }
            if move, destination != source { try sandbox.removeSync(source, recursive: true) }
            return Output()
        } catch {
            return Output(stderr: "\(command): \(operands[0]): \(Self.reason(error))\n", code: 1)
        }
    }

    private mutating func cd(_ args: [String]) -> Output {
        let target = args.first ?? sandbox.workingDirectory
        guard let resolved = try? path(target), sandbox.statSync(resolved)?.isDirectory == true else {
            return Output(stderr: "cd: \(target): No such directory\n", code: 1)
        }
        workingDirectory = resolved
        return Output()
    }

    private func find(_ args: [String]) throws -> Output {
        var roots: [String] = []
        var index = 0
        while index < args.count, !args[index].hasPrefix("-") { roots.append(args[index]); index += 1 }
        var name: String?
        var type: String?
        var maxDepth = Int.max
        while index < args.count {
            let option = args[index]
            let value = index + 1 < args.count ? args[index + 1] : ""
            switch option {
            case "-name": name = value
            case "-type": type = value
            case "-maxdepth": maxDepth = Int(value) ?? Int.max
            default: return Output(stderr: "find: \(option): not supported in the virtual sandbox\n", code: 1)
            }
            index += 2
        }
        var output = Output()
        for given in roots.isEmpty ? ["."] : roots {
            // `find src/` prints `src/x`, not `src//x`.
            var root = given
            while root.count > 1, root.hasSuffix("/") { root.removeLast() }
            guard let base = try? path(root), sandbox.statSync(base) != nil else {
                output.stderr += "find: \(root): No such file or directory\n"
                output.code = 1
                continue
            }
            for (entry, isDirectory) in sandbox.walkSync(base) {
                try checkDeadline("find")
                let suffix = entry.dropFirst(base == "/" ? 0 : base.count)
                let depth = suffix.split(separator: "/").count
                guard depth <= maxDepth else { continue }
                if let type, (type == "d") != isDirectory { continue }
                if let name, !Glob.matches(SandboxPath.name(entry), name) { continue }
                output.stdout += (base == "/" && root == "/" ? entry : root + suffix) + "\n"
            }
        }
        return output
    }

    private func grep(_ args: [String], stdin: String) throws -> Output {
        let (flags, _, operands) = try Self.flags(
            args, "grep", allowed: ["i", "n", "v", "c", "l", "r", "R", "F", "E"])
        guard let pattern = operands.first else { return Output(stderr: "grep: missing pattern\n", code: 2) }
        let matcher: (Substring) -> Bool
        if flags.contains("F") {
            matcher = flags.contains("i") ? { $0.localizedCaseInsensitiveContains(pattern) } : { $0.contains(pattern) }
        } else {
            guard let regex = try? Regex(pattern) else { return Output(stderr: "grep: invalid pattern \(pattern)\n", code: 2) }
            let compiled = flags.contains("i") ? regex.ignoresCase() : regex
            matcher = { (try? compiled.firstMatch(in: $0)) != nil }
        }
        var sources: [(name: String?, text: String)] = []
        var output = Output()
        let recursive = flags.contains("r") || flags.contains("R")
        if operands.count == 1, !recursive {
            sources = [(nil, stdin)]
        } else {
            // `grep -r PATTERN` with no path searches the working directory, as GNU grep does.
            for file in operands.count == 1 ? ["."] : Array(operands.dropFirst()) {
                guard let resolved = try? path(file), let info = sandbox.statSync(resolved) else {
                    output.stderr += "grep: \(file): No such file or directory\n"
                    output.code = 2
                    continue
                }
                if info.isDirectory {
                    guard flags.contains("r") || flags.contains("R") else {
                        output.stderr += "grep: \(file): Is a directory\n"
                        continue
                    }
                    for (entry, isDirectory) in sandbox.walkSync(resolved) where !isDirectory {
                        let shown = file + entry.dropFirst(resolved.count)
                        sources.append((shown, String(decoding: (try? sandbox.readSync(entry)) ?? Data(), as: UTF8.self)))
                    }
                } else {
                    sources.append((file, String(decoding: (try? sandbox.readSync(resolved)) ?? Data(), as: UTF8.self)))
                }
            }
        }
        let named = sources.count > 1 || flags.contains("r") || flags.contains("R")
        var found = false
        for (name, text) in sources {
            var count = 0
            let prefix = named ? name.map { $0 + ":" } ?? "" : ""
            for (number, line) in text.splitLines().enumerated() {
                if number % 256 == 0 { try checkDeadline("grep") }
                guard matcher(line) != flags.contains("v") else { continue }
                count += 1
                found = true
                if flags.contains("c") || flags.contains("l") { continue }
                output.stdout += prefix + (flags.contains("n") ? "\(number + 1):" : "") + line + "\n"
            }
            if flags.contains("c") { output.stdout += prefix + "\(count)\n" }
            if flags.contains("l"), count > 0, let name { output.stdout += name + "\n" }
        }
        if output.code == 0 { output.code = found ? 0 : 1 }
        return output
    }

    /// A command's input: its file operand, else stdin; or the message for a file it cannot read.
    private enum Input {
        case text(String)
        case failure(String)
    }

    private func input(_ operands: [String], stdin: String, command: String) -> Input {
        guard let file = operands.first else { return .text(stdin) }
        do { return .text(String(decoding: try sandbox.readSync(try path(file)), as: UTF8.self)) } catch {
            return .failure("\(command): \(file): \(Self.reason(error))\n")
        }
    }

    /// Lines of `text` without the empty one after a final newline.

    private func headTail(_ args: [String], stdin: String, head: Bool) throws -> Output {
        let (_, values, operands) = try Self.flags(args, head ? "head" : "tail", allowed: [], taking: ["n"])
        let text = values["n"] ?? "10"
        // `tail -n +N` starts at line N.
        let fromLine = !head && text.hasPrefix("+")
        let count = max(0, Int(fromLine ? String(text.dropFirst()) : text) ?? 10)
        switch input(operands, stdin: stdin, command: head ? "head" : "tail") {
        case .failure(let message): return Output(stderr: message, code: 1)
        case .text(let text):
            let lines = text.splitLines()
            let kept = head ? lines.prefix(count) : fromLine ? lines.dropFirst(max(0, count - 1)) : lines.suffix(count)
            return Output(stdout: kept.map { $0 + "\n" }.joined())
        }
    }

    private func wc(_ args: [String], stdin: String) throws -> Output {
        let (flags, _, operands) = try Self.flags(args, "wc", allowed: ["l", "w", "c"])
        switch input(operands, stdin: stdin, command: "wc") {
        case .failure(let message): return Output(stderr: message, code: 1)
        case .text(let text):
            let all = flags.isDisjoint(with: ["l", "w", "c"])
            var fields: [String] = []
            // Scalars, not Characters: "\r\n" is one Character and would not count as a newline.
            if all || flags.contains("l") { fields.append(String(text.unicodeScalars.filter { $0 == "\n" }.count)) }
            if all || flags.contains("w") { fields.append(String(text.split(whereSeparator: { $0.isWhitespace }).count)) }
            if all || flags.contains("c") { fields.append(String(text.utf8.count)) }
            if let file = operands.first { fields.append(file) }
            return Output(stdout: fields.joined(separator: " ") + "\n")
        }
    }

    private func sort(_ args: [String], stdin: String) throws -> Output {
        let (flags, _, operands) = try Self.flags(args, "sort", allowed: ["r", "n", "u"])
        switch input(operands, stdin: stdin, command: "sort") {
        case .failure(let message): return Output(stderr: message, code: 1)
        case .text(let text):
            var lines = text.splitLines().map(String.init)
            if flags.contains("n") {
                func number(_ line: String) -> Double { Double(line.trimmingCharacters(in: .whitespaces)) ?? 0 }
                lines.sort { number($0) < number($1) }
            } else {
                lines.sort()
            }
            if flags.contains("r") { lines.reverse() }
            if flags.contains("u") {
                var seen = Set<String>()
                lines = lines.filter { seen.insert($0).inserted }
            }
            return Output(stdout: lines.map { $0 + "\n" }.joined())
        }
    }
}
