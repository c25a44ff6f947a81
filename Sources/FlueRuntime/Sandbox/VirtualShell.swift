import Foundation

/// The shell of a ``VirtualSandbox``: enough to stage and inspect files, never the host's.
///
/// Syntax: words with `'…'`, `"…"` and `\` quoting, `$NAME` / `${NAME}` from the command's
/// environment, `*` and `?` in unquoted words matched against one directory, pipes `|`, `>` and
/// `>>` redirection, `<` input, and `&&`, `||`, `;` between pipelines.
///
/// Commands: `echo [-n]`, `printf FORMAT [ARG…]` (`%s %d %%`, `\n \t \\`), `cat`, `ls [-a] [-l]`,
/// `mkdir [-p]`, `touch`, `rm [-r] [-f]`, `cp [-r]`, `mv`, `pwd`, `cd`, `find [PATH…] [-name GLOB]
/// [-type f|d] [-maxdepth N]`, `grep [-i] [-n] [-v] [-c] [-l] [-r] [-F] PATTERN [FILE…]` (Swift
/// regular expressions), `head`/`tail [-n N]`, `wc [-l] [-w] [-c]`, `sort [-r] [-n] [-u]`, `true`,
/// `false`. Anything else exits 127 with "not supported in the virtual sandbox", which the model
/// can read and work around.
struct VirtualShell {
    let sandbox: VirtualSandbox
    var workingDirectory: String
    var environment: [String: String]

    static let supported = [
        "cat", "cd", "cp", "echo", "false", "find", "grep", "head", "ls", "mkdir", "mv", "printf", "pwd", "rm",
        "sort", "tail", "touch", "true", "wc",
    ]

    struct Output {
        var stdout = ""
        var stderr = ""
        var code: Int32 = 0
    }

    /// Runs a command line: (stdout, stderr, exit code of the last pipeline run).
    mutating func run(_ line: String) -> (String, String, Int32) {
        let tokens: [Token]
        do {
            tokens = try Self.tokenize(line, environment: environment)
        } catch {
            return ("", "syntax error: \(error)\n", 2)
        }
        var stdout = ""
        var stderr = ""
        var code: Int32 = 0
        var connector = Token.semicolon
        for (pipeline, next) in Self.split(tokens) {
            if Task.isCancelled { return (stdout, stderr + "cancelled\n", 130) }
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
        case pipe, and, or, semicolon, redirect(append: Bool), input
    }

    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    static func tokenize(_ line: String, environment: [String: String]) throws -> [Token] {
        var tokens: [Token] = []
        var word = ""
        var inWord = false
        var globbing = false
        var chars = Array(line)
        chars.append(" ")
        var index = 0
        func flush() {
            if inWord { tokens.append(.word(word, globbing: globbing)) }
            word = ""
            inWord = false
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
        while index < chars.count {
            let c = chars[index]
            switch c {
            case " ", "\t", "\n":
                flush()
                index += 1
            case "'":
                inWord = true
                guard let close = chars[(index + 1)...].firstIndex(of: "'") else { throw ParseError(description: "unterminated '") }
                word += String(chars[(index + 1)..<close])
                index = close + 1
            case "\"":
                inWord = true
                index += 1
                while true {
                    guard index < chars.count - 1 else { throw ParseError(description: "unterminated \"") }
                    let d = chars[index]
                    if d == "\"" { index += 1; break }
                    if d == "\\", index + 1 < chars.count - 1, "\"\\$`".contains(chars[index + 1]) {
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
                inWord = true
                if index + 1 < chars.count - 1 { word.append(chars[index + 1]) }
                index += 2
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
                guard chars[index + 1] == "&" else { throw ParseError(description: "background jobs (&) are not supported") }
                tokens.append(.and)
                index += 2
            case ";":
                flush()
                tokens.append(.semicolon)
                index += 1
            case ">":
                flush()
                if chars[index + 1] == ">" { tokens.append(.redirect(append: true)); index += 2 } else {
                    tokens.append(.redirect(append: false))
                    index += 1
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
        return tokens
    }

    /// Pipelines with the connector that follows each.
    static func split(_ tokens: [Token]) -> [([Token], Token)] {
        var result: [([Token], Token)] = []
        var current: [Token] = []
        for token in tokens {
            switch token {
            case .and, .or, .semicolon:
                if !current.isEmpty { result.append((current, token)) }
                current = []
            default: current.append(token)
            }
        }
        if !current.isEmpty { result.append((current, .semicolon)) }
        return result
    }

    // MARK: running

    private mutating func runPipeline(_ tokens: [Token]) -> Output {
        var commands: [[Token]] = [[]]
        for token in tokens {
            if token == .pipe { commands.append([]) } else { commands[commands.count - 1].append(token) }
        }
        var input = ""
        var result = Output()
        for command in commands {
            var args: [String] = []
            var redirect: (path: String, append: Bool)?
            var inputPath: String?
            var index = 0
            while index < command.count {
                switch command[index] {
                case .word(let word, let globbing):
                    args += globbing ? expand(word) : [word]
                case .redirect(let append):
                    guard index + 1 < command.count, case .word(let target, _) = command[index + 1] else {
                        return Output(stdout: result.stdout, stderr: result.stderr + "syntax error: > needs a file\n", code: 2)
                    }
                    redirect = (target, append)
                    index += 1
                case .input:
                    guard index + 1 < command.count, case .word(let source, _) = command[index + 1] else {
                        return Output(stdout: result.stdout, stderr: result.stderr + "syntax error: < needs a file\n", code: 2)
                    }
                    inputPath = source
                    index += 1
                default: break
                }
                index += 1
            }
            if let inputPath {
                do { input = String(decoding: try sandbox.readSync(try path(inputPath)), as: UTF8.self) } catch {
                    return Output(stderr: result.stderr + "\(inputPath): No such file or directory\n", code: 1)
                }
            }
            var output = args.isEmpty ? Output() : execute(args, stdin: input)
            if let redirect {
                do {
                    let target = try path(redirect.path)
                    var data = Data(output.stdout.utf8)
                    if redirect.append, let existing = try? sandbox.readSync(target) { data = existing + data }
                    try sandbox.writeSync(target, data)
                    output.stdout = ""
                } catch {
                    output.stderr += "\(redirect.path): \(Self.reason(error))\n"
                    output.code = 1
                }
            }
            input = output.stdout
            result.stderr += output.stderr
            result.code = output.code
        }
        result.stdout = input
        return result
    }

    private func path(_ text: String) throws -> String { try sandbox.resolve(text, from: workingDirectory) }

    /// An unquoted word with `*`/`?` matched against the entries of its directory; unchanged when
    /// nothing matches (as bash does).
    private func expand(_ word: String) -> [String] {
        let directory = word.contains("/") ? String(word[..<word.lastIndex(of: "/")!]) : ""
        let pattern = word.contains("/") ? String(word[word.index(after: word.lastIndex(of: "/")!)...]) : word
        guard let base = try? path(directory.isEmpty ? "." : directory),
            let entries = try? sandbox.listSync(base)
        else { return [word] }
        let matches = entries.filter { !$0.name.hasPrefix(".") && Glob.matches($0.name, pattern) }.map {
            directory.isEmpty ? $0.name : directory + "/" + $0.name
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
        let name = args[0]
        let rest = Array(args.dropFirst())
        switch name {
        case "echo": return echo(rest)
        case "printf": return printf(rest)
        case "cat": return cat(rest, stdin: stdin)
        case "ls": return ls(rest)
        case "mkdir": return mkdir(rest)
        case "touch": return touch(rest)
        case "rm": return rm(rest)
        case "cp": return copy(rest, move: false)
        case "mv": return copy(rest, move: true)
        case "pwd": return Output(stdout: workingDirectory + "\n")
        case "cd": return cd(rest)
        case "find": return find(rest)
        case "grep": return grep(rest, stdin: stdin)
        case "head", "tail": return headTail(rest, stdin: stdin, head: name == "head")
        case "wc": return wc(rest, stdin: stdin)
        case "sort": return sort(rest, stdin: stdin)
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
    private static func flags(_ args: [String], taking valued: Set<Character> = []) -> (Set<Character>, [Character: String], [String]) {
        var flags = Set<Character>()
        var values: [Character: String] = [:]
        var index = 0
        while index < args.count, args[index].hasPrefix("-"), args[index].count > 1 {
            if args[index] == "--" { index += 1; break }
            let letters = Array(args[index].dropFirst())
            if letters.allSatisfy(\.isNumber), valued.contains("n") {
                values["n"] = String(letters)
            } else if let first = letters.first, valued.contains(first) {
                values[first] = letters.count > 1 ? String(letters.dropFirst()) : (index + 1 < args.count ? args[index + 1] : "")
                if letters.count == 1 { index += 1 }
            } else {
                flags.formUnion(letters)
            }
            index += 1
        }
        return (flags, values, Array(args[index...]))
    }

    private func echo(_ args: [String]) -> Output {
        var args = args
        var newline = true
        if args.first == "-n" { newline = false; args.removeFirst() }
        return Output(stdout: args.joined(separator: " ") + (newline ? "\n" : ""))
    }

    private func printf(_ args: [String]) -> Output {
        guard let format = args.first else { return Output(stderr: "printf: missing format\n", code: 1) }
        var operands = Array(args.dropFirst())
        var out = ""
        repeat {
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
        } while !operands.isEmpty && format.contains("%")
        return Output(stdout: out)
    }

    /// Runs `body` for each operand; a failure is reported as `command: operand: reason` (exit 1)
    /// and the next operand still runs.
    private func each(_ operands: [String], _ command: String, _ body: (String, inout Output) throws -> Void) -> Output {
        var output = Output()
        for operand in operands {
            do { try body(operand, &output) } catch {
                output.stderr += "\(command): \(operand): \(Self.reason(error))\n"
                output.code = 1
            }
        }
        return output
    }

    private func cat(_ args: [String], stdin: String) -> Output {
        if args.isEmpty { return Output(stdout: stdin) }
        return each(args, "cat") { file, output in
            output.stdout += String(decoding: try sandbox.readSync(try path(file)), as: UTF8.self)
        }
    }

    private func ls(_ args: [String]) -> Output {
        let (flags, _, operands) = Self.flags(args)
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

    private func mkdir(_ args: [String]) -> Output {
        let (flags, _, operands) = Self.flags(args)
        return each(operands, "mkdir") { dir, _ in
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

    private func touch(_ args: [String]) -> Output {
        each(args, "touch") { file, _ in
            let resolved = try path(file)
            if sandbox.statSync(resolved) == nil { try sandbox.writeSync(resolved, Data()) }
        }
    }

    private func rm(_ args: [String]) -> Output {
        let (flags, _, operands) = Self.flags(args)
        return each(operands, "rm") { target, _ in
            do {
                try sandbox.removeSync(try path(target), recursive: flags.contains("r") || flags.contains("R"))
            } catch let error as FlueError where error.kind == .fileNotFound && flags.contains("f") {
                return
            }
        }
    }

    private func copy(_ args: [String], move: Bool) -> Output {
        let command = move ? "mv" : "cp"
        let (flags, _, operands) = Self.flags(args)
        guard operands.count == 2 else { return Output(stderr: "\(command): give a source and a destination\n", code: 1) }
        do {
            let source = try path(operands[0])
            var destination = try path(operands[1])
            guard let info = sandbox.statSync(source) else { throw FlueError(.fileNotFound, source) }
            if sandbox.statSync(destination)?.isDirectory == true { destination += "/" + SandboxPath.name(source) }
            if info.isDirectory {
                guard move || flags.contains("r") || flags.contains("R") else {
                    return Output(stderr: "cp: \(operands[0]) is a directory (use -r)\n", code: 1)
                }
                guard destination != source, !destination.hasPrefix(source + "/") else {
                    return Output(stderr: "\(command): cannot copy \(operands[0]) into itself\n", code: 1)
                }
                for (entry, isDirectory) in sandbox.walkSync(source) {
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

    private func find(_ args: [String]) -> Output {
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
        for root in roots.isEmpty ? ["."] : roots {
            guard let base = try? path(root), sandbox.statSync(base) != nil else {
                output.stderr += "find: \(root): No such file or directory\n"
                output.code = 1
                continue
            }
            for (entry, isDirectory) in sandbox.walkSync(base) {
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

    private func grep(_ args: [String], stdin: String) -> Output {
        let (flags, _, operands) = Self.flags(args)
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
        if operands.count == 1 {
            sources = [(nil, stdin)]
        } else {
            for file in operands.dropFirst() {
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
            for (number, line) in Self.lines(text).enumerated() where matcher(line) != flags.contains("v") {
                count += 1
                found = true
                if flags.contains("c") || flags.contains("l") { continue }
                output.stdout += prefix + (flags.contains("n") ? "\(number + 1):" : "") + line + "\n"
            }
            if flags.contains("c") { output.stdout += (named && name != nil ? "\(name!):" : "") + "\(count)\n" }
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
    private static func lines(_ text: String) -> [Substring] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        return lines
    }

    private func headTail(_ args: [String], stdin: String, head: Bool) -> Output {
        let (_, values, operands) = Self.flags(args, taking: ["n"])
        let count = max(0, Int(values["n"] ?? "10") ?? 10)
        switch input(operands, stdin: stdin, command: head ? "head" : "tail") {
        case .failure(let message): return Output(stderr: message, code: 1)
        case .text(let text):
            let lines = Self.lines(text)
            let kept = head ? lines.prefix(count) : lines.suffix(count)
            return Output(stdout: kept.map { $0 + "\n" }.joined())
        }
    }

    private func wc(_ args: [String], stdin: String) -> Output {
        let (flags, _, operands) = Self.flags(args)
        switch input(operands, stdin: stdin, command: "wc") {
        case .failure(let message): return Output(stderr: message, code: 1)
        case .text(let text):
            let all = flags.isDisjoint(with: ["l", "w", "c"])
            var fields: [String] = []
            if all || flags.contains("l") { fields.append(String(text.filter { $0 == "\n" }.count)) }
            if all || flags.contains("w") { fields.append(String(text.split(whereSeparator: { $0.isWhitespace }).count)) }
            if all || flags.contains("c") { fields.append(String(text.utf8.count)) }
            if let file = operands.first { fields.append(file) }
            return Output(stdout: fields.joined(separator: " ") + "\n")
        }
    }

    private func sort(_ args: [String], stdin: String) -> Output {
        let (flags, _, operands) = Self.flags(args)
        switch input(operands, stdin: stdin, command: "sort") {
        case .failure(let message): return Output(stderr: message, code: 1)
        case .text(let text):
            var lines = Self.lines(text).map(String.init)
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
