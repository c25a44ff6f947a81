import Foundation
import Synchronization

/// The default sandbox, safe anywhere: a file tree in process memory and a shell that knows a
/// documented subset of commands (``VirtualShell``), enough to stage, inspect and transform files.
/// Nothing touches the host's disk, network or processes. Its contents live as long as the object
/// (an agent's sandbox provider keeps one per agent instance in this process; a restart empties it),
/// and their size is capped (``capacity``), so a model cannot fill the server's memory.
public final class VirtualSandbox: Sandbox {
    enum Node: Sendable {
        case file(Data)
        case directory
    }

    struct Tree: Sendable {
        var nodes: [String: Node] = ["/": .directory]
        /// Bytes held by files.
        var used = 0
    }

    public let workingDirectory: String
    /// The most bytes its files may hold together; a write beyond it fails with
    /// `invalid_file_operation` ("the virtual sandbox is full").
    public let capacity: Int
    private let tree = Mutex(Tree())

    /// A tree holding `/`, the working directory, and `files` (path → UTF-8 text; relative paths
    /// are placed under the working directory), holding at most `capacity` bytes (64 MiB).
    public init(files: [String: String] = [:], workingDirectory: String = "/workspace", capacity: Int = 64 << 20) throws {
        let cwd = try SandboxPath.resolve(workingDirectory, from: "/")
        self.workingDirectory = cwd
        self.capacity = capacity
        try makeDirectorySync(cwd)
        for (path, text) in files.sorted(by: { $0.key < $1.key }) {
            try writeSync(try resolve(path), Data(text.utf8))
        }
    }

    func resolve(_ path: String, from base: String? = nil) throws -> String {
        try SandboxPath.resolve(path, from: base ?? workingDirectory)
    }

    // MARK: Sandbox

    public func readFile(_ path: String) async throws -> Data { try readSync(try resolve(path)) }

    public func writeFile(_ path: String, _ data: Data) async throws { try writeSync(try resolve(path), data) }

    public func stat(_ path: String) async throws -> SandboxFileInfo? { statSync(try resolve(path)) }

    public func list(_ path: String) async throws -> [SandboxEntry] { try listSync(try resolve(path)) }

    public func makeDirectory(_ path: String) async throws { try makeDirectorySync(try resolve(path)) }

    public func remove(_ path: String, recursive: Bool) async throws { try removeSync(try resolve(path), recursive: recursive) }

    public func exec(_ command: String, options: ExecOptions) async throws -> ExecResult {
        let cwd = try resolve(options.workingDirectory ?? workingDirectory)
        var shell = VirtualShell(
            sandbox: self, workingDirectory: cwd, environment: options.environment, deadline: .now + options.timeout)
        let (stdout, stderr, code) = shell.run(command)
        let (out, outCut) = Self.limited(stdout, to: options.outputLimit)
        let (err, errCut) = Self.limited(stderr, to: options.outputLimit)
        return ExecResult(stdout: out, stderr: err, exitCode: code, truncated: outCut || errCut)
    }

    /// `text` cut to `limit` UTF-8 bytes (at a character boundary), with a note of what was cut.
    static func limited(_ text: String, to limit: Int) -> (String, Bool) {
        let bytes = text.utf8.count
        guard bytes > max(0, limit) else { return (text, false) }
        var kept = ""
        var used = 0
        for character in text {
            let size = character.utf8.count
            if used + size > limit { break }
            kept.append(character)
            used += size
        }
        return (kept + "\n[output truncated: \(bytes - used) more bytes]", true)
    }

    /// Replaces the file's text with `transform` of it in one step: no write of another caller
    /// lands between the read and the write (two parallel `edit` calls both apply).
    public func updateText(_ path: String, _ transform: (String) throws -> String) async throws {
        let path = try resolve(path)
        try tree.withLock { tree in
            guard case .file(let data)? = tree.nodes[path] else {
                throw tree.nodes[path] == nil
                    ? FlueError(.fileNotFound, "\(path): no such file or directory")
                    : FlueError(.invalidFileOperation, "\(path) is a directory")
            }
            try Self.put(path, Data(try transform(String(decoding: data, as: UTF8.self)).utf8), in: &tree, capacity: capacity)
        }
    }

    // MARK: the tree (synchronous, for the shell)

    func statSync(_ path: String) -> SandboxFileInfo? {
        tree.withLock { tree in
            switch tree.nodes[path] {
            case .file(let data)?: SandboxFileInfo(isDirectory: false, size: data.count)
            case .directory?: SandboxFileInfo(isDirectory: true, size: 0)
            case nil: nil
            }
        }
    }

    func readSync(_ path: String) throws -> Data {
        switch tree.withLock({ $0.nodes[path] }) {
        case .file(let data)?: return data
        case .directory?: throw FlueError(.invalidFileOperation, "\(path) is a directory")
        case nil: throw FlueError(.fileNotFound, "\(path): no such file or directory")
        }
    }

    func writeSync(_ path: String, _ data: Data) throws {
        try tree.withLock { tree in try Self.put(path, data, in: &tree, capacity: capacity) }
    }

    func makeDirectorySync(_ path: String) throws {
        try tree.withLock { tree in try Self.makeDirectories(path, in: &tree) }
    }

    /// Creates `path` and its missing parents.
    private static func makeDirectories(_ path: String, in tree: inout Tree) throws {
        var current = ""
        for part in path.split(separator: "/") {
            current += "/" + part
            switch tree.nodes[current] {
            case .directory?: continue
            case .file?: throw FlueError(.invalidFileOperation, "\(current) is a file, not a directory")
            case nil: tree.nodes[current] = .directory
            }
        }
    }

    /// Writes a file (parents created) under one lock, within the capacity.
    private static func put(_ path: String, _ data: Data, in tree: inout Tree, capacity: Int) throws {
        guard path != "/" else { throw FlueError(.invalidFileOperation, "/ is a directory") }
        let previous: Int
        switch tree.nodes[path] {
        case .directory?: throw FlueError(.invalidFileOperation, "\(path) is a directory")
        case .file(let old)?: previous = old.count
        case nil: previous = 0
        }
        let used = tree.used - previous + data.count
        guard used <= capacity else {
            throw FlueError(
                .invalidFileOperation,
                "the virtual sandbox is full: its files may hold \(capacity >> 20) MiB together; remove some first")
        }
        try makeDirectories(SandboxPath.parent(path), in: &tree)
        tree.nodes[path] = .file(data)
        tree.used = used
    }

    func listSync(_ path: String) throws -> [SandboxEntry] {
        try tree.withLock { tree in
            switch tree.nodes[path] {
            case .directory?: break
            case .file?: throw FlueError(.invalidFileOperation, "\(path) is not a directory")
            case nil: throw FlueError(.fileNotFound, "\(path): no such file or directory")
            }
            let prefix = path == "/" ? "/" : path + "/"
            return tree.nodes.compactMap { key, node -> SandboxEntry? in
                guard key != "/", key.hasPrefix(prefix), !key.dropFirst(prefix.count).contains("/") else { return nil }
                if case .directory = node { return SandboxEntry(name: String(key.dropFirst(prefix.count)), isDirectory: true) }
                return SandboxEntry(name: String(key.dropFirst(prefix.count)), isDirectory: false)
            }.sorted { $0.name < $1.name }
        }
    }

    /// Every path at or below `path`, sorted (for `find`, `grep -r`, `cp -r`).
    func walkSync(_ path: String) -> [(path: String, isDirectory: Bool)] {
        tree.withLock { tree in
            let prefix = path == "/" ? "/" : path + "/"
            return tree.nodes.compactMap { key, node -> (String, Bool)? in
                guard key == path || key.hasPrefix(prefix) else { return nil }
                if case .directory = node { return (key, true) }
                return (key, false)
            }.sorted { $0.0 < $1.0 }
        }
    }

    /// Whether `path` is the working directory or holds it (removing or moving it would leave
    /// every later relative path dangling).
    func isWorkingDirectoryOrAncestor(_ path: String) -> Bool {
        path == "/" || workingDirectory == path || workingDirectory.hasPrefix(path + "/")
    }

    func removeSync(_ path: String, recursive: Bool) throws {
        guard !isWorkingDirectoryOrAncestor(path) else {
            throw FlueError(.invalidFileOperation, "\(path) is or holds the working directory and cannot be removed")
        }
        try tree.withLock { tree in
            switch tree.nodes[path] {
            case nil: throw FlueError(.fileNotFound, "\(path): no such file or directory")
            case .file(let data)?:
                tree.nodes[path] = nil
                tree.used -= data.count
            case .directory?:
                let prefix = path + "/"
                let below = tree.nodes.keys.filter { $0.hasPrefix(prefix) }
                guard recursive || below.isEmpty else {
                    throw FlueError(.invalidFileOperation, "\(path) is a directory that is not empty")
                }
                for key in below {
                    if case .file(let data)? = tree.nodes[key] { tree.used -= data.count }
                    tree.nodes[key] = nil
                }
                tree.nodes[path] = nil
            }
        }
    }
}
