import FlueRuntime
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a sandbox starts its commands.
enum Launcher: Sendable, Hashable {
    /// `shell -c COMMAND` on the host.
    case direct(shell: String)
    /// `bwrap … shell -c COMMAND`.
    case bubblewrap(BubblewrapCommand)

    /// `/bin/bash` when the host has it (the tool is called `bash`, and models write bash), else
    /// `/bin/sh`.
    static var shell: String { access("/bin/bash", X_OK) == 0 ? "/bin/bash" : "/bin/sh" }

    /// The launcher for `isolation`; for bubblewrap, `bwrap` looked up in `searchPath` (`nil`:
    /// the server's `PATH`). Throws `sandbox_unavailable` when it is not there.
    static func make(_ isolation: LocalSandbox.Isolation, searchPath: String?) throws -> Launcher {
        switch isolation {
        case .none:
            return .direct(shell: shell)
        case .bubblewrap:
            let path = searchPath ?? LocalSandbox.serverPath
            guard let command = BubblewrapCommand.find(searchPath: path, shell: shell) else {
                throw FlueError(
                    .sandboxUnavailable,
                    "bubblewrap isolation needs bwrap, and it is not on PATH (\(path)); install it (Debian/Ubuntu: "
                        + "apt-get install bubblewrap) or use isolation .none",
                    details: ["isolation": "bubblewrap", "searchPath": .string(path)])
            }
            return .bubblewrap(command)
        }
    }

    /// The program and arguments that run `command` in `workingDirectory` of a sandbox on `root`.
    func invocation(_ command: String, root: String, workingDirectory: String) -> (executable: String, arguments: [String]) {
        switch self {
        case .direct(let shell):
            (shell, ["-c", command])
        case .bubblewrap(let bwrap):
            (bwrap.executable, bwrap.arguments(command: command, root: root, workingDirectory: workingDirectory))
        }
    }
}

extension LocalSandbox {
    /// `PATH` for commands when the server has none.
    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The server's `PATH`, or ``defaultPath``.
    static var serverPath: String {
        guard let path = getenv("PATH").map({ String(cString: $0) }), !path.isEmpty else { return defaultPath }
        return path
    }

    /// The variables of the server's environment a command inherits (when set): locale only.
    static let inheritedVariables = ["LANG", "LC_ALL", "LC_CTYPE"]

    /// A command's whole environment, an allowlist: `PATH` (the server's, or ``defaultPath``),
    /// `HOME` = the root, `LANG`/`LC_ALL`/`LC_CTYPE` when the server has them, `TERM=dumb`; then
    /// the sandbox's ``environment``; then `extra`. Nothing else of the server's environment
    /// (provider keys, `DATABASE_URL`, …) is passed on. Names that are empty or hold `=` or NUL,
    /// and values holding NUL, are left out.
    func commandEnvironment(_ extra: [String: String]) -> [String: String] {
        var variables = ["PATH": Self.serverPath, "HOME": root, "TERM": "dumb"]
        for name in Self.inheritedVariables {
            if let value = getenv(name) { variables[name] = String(cString: value) }
        }
        variables.merge(environment) { $1 }
        variables.merge(extra) { $1 }
        return variables.filter { name, value in
            !name.isEmpty && !name.contains("=") && !name.contains("\0") && !value.contains("\0")
        }
    }

    /// Runs a command line with the sandbox's shell: `bash -c COMMAND` (`sh` where there is no
    /// bash), under bubblewrap when ``isolation`` says so.
    ///
    /// - Starts in `options.workingDirectory` (a sandbox path, confined like a file path; it must
    ///   be an existing directory), else the root. Standard input is empty (`/dev/null`).
    /// - The environment is an allowlist (see ``commandEnvironment(_:)``): the sandbox's
    ///   ``environment`` and `options.environment` are added to `PATH`, `HOME` (the root), the
    ///   server's locale variables and `TERM=dumb`; nothing else of the server's environment
    ///   reaches the command.
    /// - The command runs in its own session and process group. After `options.timeout` the whole
    ///   group gets `SIGTERM`, then `SIGKILL` 250 ms later, and the result has exit code 124 and a
    ///   note at the end of stderr. When the calling task is cancelled, the group is killed with
    ///   `SIGKILL` and this throws `CancellationError`. When the shell exits, anything it left
    ///   running in its group (`sleep 100 &`) is killed.
    /// - stdout and stderr each keep their first `options.outputLimit` bytes (cut back to a whole
    ///   UTF-8 character); the rest is read and dropped, so the command never blocks on output, and
    ///   the kept text ends with `\n[output truncated: N more bytes]` and ``ExecResult/truncated``
    ///   is true. Invalid UTF-8 is replaced.
    /// - The exit code is the shell's; a shell ended by a signal reports 128 + the signal, as
    ///   shells do.
    ///
    /// Throws `path_outside_sandbox`, `file_not_found` or `invalid_file_operation` for the working
    /// directory, `sandbox_unavailable` when the shell (or `bwrap`) cannot be started, and
    /// `CancellationError`.
    public func exec(_ command: String, options: ExecOptions) async throws -> ExecResult {
        let cwd = try confine(options.workingDirectory ?? workingDirectory)
        switch try POSIXFile.info(cwd) {
        case nil: throw FlueError(.fileNotFound, "\(cwd.shown): no such directory")
        case let info? where !info.isDirectory: throw FlueError(.invalidFileOperation, "\(cwd.shown) is not a directory")
        default: break
        }
        let (executable, arguments) = launcher.invocation(command, root: root, workingDirectory: cwd.real)
        let outcome = try await ProcessRunner.run(
            executable: executable, arguments: arguments, environment: commandEnvironment(options.environment),
            workingDirectory: cwd.real, timeout: options.timeout, outputLimit: options.outputLimit)
        var stderr = outcome.stderr.text
        if outcome.timedOut {
            if !stderr.isEmpty, !stderr.hasSuffix("\n") { stderr += "\n" }
            stderr += "[timed out after \(Self.describe(options.timeout)); the command and its processes were killed]\n"
        }
        return ExecResult(
            stdout: outcome.stdout.text, stderr: stderr, exitCode: outcome.timedOut ? 124 : outcome.exitCode,
            truncated: outcome.stdout.truncated || outcome.stderr.truncated)
    }

    /// A first run of `true` through the launcher: with bubblewrap, a host where `bwrap` cannot
    /// build its sandbox (no user namespaces, say) fails here, at creation, rather than at the
    /// model's first command. Throws `sandbox_unavailable`.
    func verifyLauncher() async throws {
        guard case .bubblewrap(let bwrap) = launcher else { return }
        let result: ExecResult
        do {
            result = try await exec("true", options: ExecOptions(timeout: .seconds(30), outputLimit: 4096))
        } catch let error as FlueError {
            throw FlueError(.sandboxUnavailable, "bubblewrap (\(bwrap.executable)) does not run here: \(error.message)")
        }
        guard result.exitCode == 0 else {
            let said = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            throw FlueError(
                .sandboxUnavailable,
                "bubblewrap (\(bwrap.executable)) does not work on this host (exit code \(result.exitCode)): "
                    + (said.isEmpty ? "no message" : said),
                details: ["isolation": "bubblewrap", "bwrap": .string(bwrap.executable)])
        }
    }

    /// A duration for a message: `2 s`, `1.5 s`, `250 ms`.
    static func describe(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = attoseconds / 1_000_000_000_000_000
        if seconds == 0 { return "\(milliseconds) ms" }
        if milliseconds == 0 { return "\(seconds) s" }
        let fraction = String(String(milliseconds + 1000).dropFirst()).replacingOccurrences(
            of: "0+$", with: "", options: .regularExpression)
        return "\(seconds).\(fraction) s"
    }
}
