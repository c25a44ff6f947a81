import Foundation

/// A workspace an agent acts in: files, and commands run over them. The built-in tools (`read`,
/// `write`, `edit`, `grep`, `glob`, `bash`) and application code (``Harness/files``,
/// ``Harness/shell(_:options:)``) go through it.
///
/// Paths are POSIX-style. A relative path is resolved against ``workingDirectory``; an absolute
/// one against the sandbox's own root (`/` is the root of the sandbox, never the host's). A path
/// that climbs above the root fails with `path_outside_sandbox`.
///
/// Errors: `FlueError` `file_not_found`, `path_outside_sandbox`, `invalid_file_operation`.
public protocol Sandbox: Sendable {
    /// Where relative paths and commands start, absolute within the sandbox (`/workspace`).
    var workingDirectory: String { get }
    /// The file's bytes.
    func readFile(_ path: String) async throws -> Data
    /// Creates or replaces the file, creating missing parent directories.
    func writeFile(_ path: String, _ data: Data) async throws
    /// What is at `path`, or `nil` when nothing is.
    func stat(_ path: String) async throws -> SandboxFileInfo?
    /// The entries of a directory, sorted by name.
    func list(_ path: String) async throws -> [SandboxEntry]
    /// Creates the directory and any missing parents (`mkdir -p`); an existing directory is fine.
    func makeDirectory(_ path: String) async throws
    /// Removes a file, or a directory (with its contents when `recursive`).
    func remove(_ path: String, recursive: Bool) async throws
    /// Runs a shell command line in the sandbox. Output beyond `options.outputLimit` bytes per
    /// stream is cut and marked; a run longer than `options.timeout` is stopped (exit code 124).
    func exec(_ command: String, options: ExecOptions) async throws -> ExecResult
    /// Replaces the file's UTF-8 text with `transform` of it. Sandboxes that can should do it in
    /// one step, so that concurrent updates (parallel `edit` calls) all apply; the default reads,
    /// transforms and writes.
    func updateText(_ path: String, _ transform: (String) throws -> String) async throws
}

extension Sandbox {
    public func updateText(_ path: String, _ transform: (String) throws -> String) async throws {
        try await writeText(path, try transform(try await readText(path)))
    }

    /// Whether anything is at `path`.
    public func exists(_ path: String) async throws -> Bool { try await stat(path) != nil }

    /// The file as UTF-8 text (invalid bytes replaced).
    public func readText(_ path: String) async throws -> String {
        String(decoding: try await readFile(path), as: UTF8.self)
    }

    /// Writes `text` as UTF-8.
    public func writeText(_ path: String, _ text: String) async throws {
        try await writeFile(path, Data(text.utf8))
    }

    /// Runs `command` with default options.
    public func exec(_ command: String) async throws -> ExecResult {
        try await exec(command, options: ExecOptions())
    }
}

/// What is at a sandbox path.
public struct SandboxFileInfo: Sendable, Hashable {
    public var isDirectory: Bool
    /// Bytes (0 for a directory).
    public var size: Int

    public init(isDirectory: Bool, size: Int) {
        self.isDirectory = isDirectory
        self.size = size
    }
}

/// One entry of a directory listing.
public struct SandboxEntry: Sendable, Hashable {
    public var name: String
    public var isDirectory: Bool

    public init(name: String, isDirectory: Bool) {
        self.name = name
        self.isDirectory = isDirectory
    }
}

/// How a command runs.
public struct ExecOptions: Sendable {
    /// Where it starts (default: the sandbox's working directory).
    public var workingDirectory: String?
    /// Variables added to the command's environment.
    public var environment: [String: String]
    /// Longest run; then it is stopped with exit code 124.
    public var timeout: Duration
    /// Bytes kept of stdout and of stderr each; the rest is cut and marked.
    public var outputLimit: Int

    public init(
        workingDirectory: String? = nil, environment: [String: String] = [:], timeout: Duration = .seconds(120),
        outputLimit: Int = 50 * 1024
    ) {
        self.workingDirectory = workingDirectory
        self.environment = environment
        self.timeout = timeout
        self.outputLimit = outputLimit
    }
}

/// What a command produced.
public struct ExecResult: Sendable, Hashable {
    public var stdout: String
    public var stderr: String
    /// 0 on success; 124 after a timeout; 127 for a command the sandbox does not support.
    public var exitCode: Int32
    /// Some output was cut at the limit.
    public var truncated: Bool

    public init(stdout: String, stderr: String, exitCode: Int32, truncated: Bool = false) {
        self.stdout = stdout
        self.stderr = stderr
        self.exitCode = exitCode
        self.truncated = truncated
    }
}

/// Path arithmetic shared by sandboxes: normalizing, and refusing to climb above the root.
public enum SandboxPath {
    /// `path` made absolute against `base` and normalized (`.`, `..`, repeated `/` removed).
    /// Throws `path_outside_sandbox` when `..` would climb above `/`.
    public static func resolve(_ path: String, from base: String) throws -> String {
        let joined = path.hasPrefix("/") ? path : base + "/" + path
        var parts: [Substring] = []
        for part in joined.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..":
                guard !parts.isEmpty else {
                    throw FlueError(.pathOutsideSandbox, "path \(path) leads outside the sandbox")
                }
                parts.removeLast()
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    /// The parent of a normalized absolute path (`/` for `/` itself).
    public static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), path != "/" else { return "/" }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }

    /// The last component of a normalized absolute path.
    public static func name(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? "/"
    }
}
