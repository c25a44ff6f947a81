import Foundation
import Synchronization

/// The default sandbox, safe anywhere: a file tree in process memory and a shell that knows a
/// documented subset of commands (``VirtualShell``), enough to stage, inspect and transform files.
/// Nothing touches the host's disk, network or processes. Its contents live as long as the object
/// (an agent's sandbox provider keeps one per agent instance in this process; a restart empties it).
public final class VirtualSandbox: Sandbox {
    enum Node: Sendable {
        case file(Data)
        case directory
    }

    public let workingDirectory: String
    private let nodes: Mutex<[String: Node]>

    /// A tree holding `/`, the working directory, and `files` (path → UTF-8 text; relative paths
    /// are placed under the working directory).
    public init(files: [String: String] = [:], workingDirectory: String = "/workspace") throws {
        let cwd = try SandboxPath.resolve(workingDirectory, from: "/")
        self.workingDirectory = cwd
        self.nodes = Mutex(["/": .directory])
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
        var shell = VirtualShell(sandbox: self, workingDirectory: cwd, environment: options.environment)
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

    // MARK: the tree (synchronous, for the shell)

    func statSync(_ path: String) -> SandboxFileInfo? {
        nodes.withLock { nodes in
            switch nodes[path] {
            case .file(let data)?: SandboxFileInfo(isDirectory: false, size: data.count)
            case .directory?: SandboxFileInfo(isDirectory: true, size: 0)
            case nil: nil
            }
        }
    }

    func readSync(_ path: String) throws -> Data {
        switch nodes.withLock({ $0[path] }) {
        case .file(let data)?: return data
        case .directory?: throw FlueError(.invalidFileOperation, "\(path) is a directory")
        case nil: throw FlueError(.fileNotFound, "\(path): no such file or directory")
        }
    }

    func writeSync(_ path: String, _ data: Data) throws {
        try makeDirectorySync(SandboxPath.parent(path))
        try nodes.withLock { nodes in
            if case .directory? = nodes[path] { throw FlueError(.invalidFileOperation, "\(path) is a directory") }
            nodes[path] = .file(data)
        }
    }

    func makeDirectorySync(_ path: String) throws {
        try nodes.withLock { nodes in
            var current = ""
            for part in path.split(separator: "/") {
                current += "/" + part
                switch nodes[current] {
                case .directory?: continue
                case .file?: throw FlueError(.invalidFileOperation, "\(current) is a file, not a directory")
                case nil: nodes[current] = .directory
                }
            }
        }
    }

    func listSync(_ path: String) throws -> [SandboxEntry] {
        try nodes.withLock { nodes in
            switch nodes[path] {
            case .directory?: break
            case .file?: throw FlueError(.invalidFileOperation, "\(path) is not a directory")
            case nil: throw FlueError(.fileNotFound, "\(path): no such file or directory")
            }
            let prefix = path == "/" ? "/" : path + "/"
            return nodes.compactMap { key, node -> SandboxEntry? in
                guard key != "/", key.hasPrefix(prefix), !key.dropFirst(prefix.count).contains("/") else { return nil }
                if case .directory = node { return SandboxEntry(name: String(key.dropFirst(prefix.count)), isDirectory: true) }
                return SandboxEntry(name: String(key.dropFirst(prefix.count)), isDirectory: false)
            }.sorted { $0.name < $1.name }
        }
    }

    /// Every path at or below `path`, sorted (for `find`, `grep -r`, `glob`).
    func walkSync(_ path: String) -> [(path: String, isDirectory: Bool)] {
        nodes.withLock { nodes in
            let prefix = path == "/" ? "/" : path + "/"
            return nodes.compactMap { key, node -> (String, Bool)? in
                guard key == path || key.hasPrefix(prefix) else { return nil }
                if case .directory = node { return (key, true) }
                return (key, false)
            }.sorted { $0.0 < $1.0 }
        }
    }

    func removeSync(_ path: String, recursive: Bool) throws {
        guard path != "/" else { throw FlueError(.invalidFileOperation, "the sandbox root cannot be removed") }
        try nodes.withLock { nodes in
            switch nodes[path] {
            case nil: throw FlueError(.fileNotFound, "\(path): no such file or directory")
            case .file?: nodes[path] = nil
            case .directory?:
                let prefix = path + "/"
                let below = nodes.keys.filter { $0.hasPrefix(prefix) }
                guard recursive || below.isEmpty else {
                    throw FlueError(.invalidFileOperation, "\(path) is a directory that is not empty")
                }
                for key in below { nodes[key] = nil }
                nodes[path] = nil
            }
        }
    }
}
