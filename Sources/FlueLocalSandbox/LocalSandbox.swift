import FlueRuntime
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A sandbox over a real directory on the host and a real shell: the `local` sandbox.
///
/// **Files.** Every path lies under ``root`` (the real, symlink-resolved absolute path of the
/// directory given at init, created if missing), which is also the ``workingDirectory``. A relative
/// path resolves against it; an absolute path is accepted only when it lies inside it
/// (`/etc/passwd` is refused, `<root>/notes.txt` is fine). A path that escapes fails with
/// `FlueError` `path_outside_sandbox` naming the path: `..` climbing out, an absolute path
/// elsewhere, or a symbolic link (at any component: a parent, the final one, the parent of a file
/// about to be created, or a dangling one) whose target lies outside the root. A missing path fails
/// with `file_not_found`; anything else that does not fit (reading a directory, listing a file,
/// removing a non-empty directory without `recursive`, permissions) with `invalid_file_operation`.
///
/// **Commands.** ``exec(_:options:)`` runs `bash -c COMMAND` (`/bin/bash`; `/bin/sh` where there is
/// no bash) in its own session and process group, with an allowlisted environment, a timeout that
/// kills the whole group, and capped output; see ``exec(_:options:)``. With
/// ``Isolation/bubblewrap`` the shell runs inside bubblewrap: no network, its own pid namespace,
/// a read-only view of the system directories, and the root as the only writable host directory.
///
/// **Security.** The root confinement binds the *file operations* (the `read`, `write`, `edit`,
/// `grep`, `glob` tools and ``Harness/files``). Without isolation (``Isolation/none``) a command
/// runs as the server's own user and can read and write anything that user can: the whole disk,
/// other agents' directories, the network. The environment allowlist keeps the server's secrets
/// (provider keys, `DATABASE_URL`) out of the command's environment, but not out of reach: such a
/// command can still read e.g. `/proc/<server pid>/environ` or the server's configuration files.
/// Use ``Isolation/none`` only for trusted agents and inputs; ``Isolation/bubblewrap`` closes those
/// paths (the server's processes are invisible in the pid namespace; only the system directories,
/// `/etc` among them, read-only, and the root are mounted).
///
/// **Races.** The escape checks resolve the real path of the deepest existing ancestor just before
/// each operation, then operate on that resolved path (with `O_NOFOLLOW` on the final component of
/// reads and writes). Between the check and the operation another process that can write inside
/// the root — a command running at the same time (tool calls of one turn run in parallel), or,
/// without isolation, one that left its process group with `setsid` — could replace a checked
/// directory with a symbolic link (time of check to time of use), and one file operation of the
/// server would follow it. Without isolation such a process can read the host anyway; with
/// bubblewrap this race is the remaining way out (one read or write with the server's
/// permissions), so run the server as a user that can reach little beyond the sandbox roots.
///
/// One object may be shared by many sessions and tasks; it is `Sendable` (immutable state plus a
/// lock table). File operations use blocking system calls on the calling thread.
public final class LocalSandbox: Sandbox {
    /// How commands run.
    public enum Isolation: Sendable, Hashable, CustomStringConvertible {
        /// Directly on the host, as the server's user, with the server's network and view of the
        /// disk. Only the file tools are confined to the root; see the security note on
        /// ``LocalSandbox``.
        case none
        /// Under bubblewrap (`bwrap`, Debian/Ubuntu package `bubblewrap`, found on `PATH`): every
        /// namespace unshared (no network but a loopback device, a new pid namespace, its own
        /// IPC and hostname), all capabilities dropped, `--die-with-parent`, a new session;
        /// read-only `/usr`, `/etc` and the `/bin`, `/sbin`, `/lib*` directories or links of the
        /// host; a fresh `/proc`, a minimal `/dev` and a private tmpfs `/tmp`; and the root bound
        /// read-write at its own path, so commands and file tools see the same paths. Nothing else
        /// of the host (home directories, `/var`, `/srv`, `/opt`, the server's files) is visible.
        /// Linux only. Creating the sandbox fails with `sandbox_unavailable` when `bwrap` is not on
        /// `PATH` or does not work on the host (e.g. unprivileged user namespaces are disabled).
        case bubblewrap

        /// `none` or `bubblewrap`.
        public var description: String {
            switch self {
            case .none: "none"
            case .bubblewrap: "bubblewrap"
            }
        }
    }

    /// The directory the sandbox confines file operations to: absolute, symlink-free.
    public let root: String
    /// Where relative paths and commands start: the same as ``root``.
    public let workingDirectory: String
    /// How commands run.
    public let isolation: Isolation
    /// Variables added to every command's environment (after the allowlisted ones from the
    /// server; ``ExecOptions/environment`` adds to and overrides these).
    public let environment: [String: String]

    /// How commands are started (the shell, and bubblewrap when isolated).
    let launcher: Launcher
    /// Per-path locks for file contents (``updateText(_:_:)`` is one step per path).
    let locks: PathLocks

    /// A sandbox over `root` (a path on the host; relative to the server's working directory when
    /// relative; created with its parents when missing).
    ///
    /// - Parameters:
    ///   - isolation: how commands run (default ``Isolation/none``; read the security note).
    ///   - environment: variables added to every command's environment (name → value). Variables
    ///     are never put on a command line, so their values do not show in `ps`.
    /// - Throws: `FlueError` `invalid_file_operation` when `root` cannot be created or is not a
    ///   directory; `sandbox_unavailable` when `isolation` is ``Isolation/bubblewrap`` and `bwrap`
    ///   is not on the server's `PATH` or fails a first trial run (`true` in the sandbox).
    public convenience init(root: String, isolation: Isolation = .none, environment: [String: String] = [:]) async throws {
        try await self.init(root: root, isolation: isolation, environment: environment, bubblewrapSearchPath: nil)
    }

    /// As the public init, with the directories searched for `bwrap` given (`:`-separated, like
    /// `PATH`; `nil`: the server's `PATH`).
    package convenience init(
        root: String, isolation: Isolation, environment: [String: String], bubblewrapSearchPath: String?,
        locks: PathLocks = PathLocks()
    ) async throws {
        let launcher = try Launcher.make(isolation, searchPath: bubblewrapSearchPath)
        try self.init(root: root, isolation: isolation, environment: environment, launcher: launcher, locks: locks)
        try await verifyLauncher()
    }

    /// A sandbox whose launcher is already known to work (no trial run).
    init(root: String, isolation: Isolation, environment: [String: String], launcher: Launcher, locks: PathLocks) throws {
        let real = try Self.prepareRoot(root)
        self.root = real
        self.workingDirectory = real
        self.isolation = isolation
        self.environment = environment
        self.launcher = launcher
        self.locks = locks
    }

    /// Creates `root` (and its parents) when missing; its real path.
    static func prepareRoot(_ root: String) throws -> String {
        guard !root.isEmpty else { throw FlueError(.invalidFileOperation, "the local sandbox needs a root directory") }
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        } catch {
            throw FlueError(.invalidFileOperation, "cannot create the sandbox root \(root): \(error.localizedDescription)")
        }
        guard let resolved = realpath(root, nil) else {
            throw FlueError(.invalidFileOperation, "cannot resolve the sandbox root \(root): \(POSIXFile.reason(errno))")
        }
        defer { free(resolved) }
        let real = String(cString: resolved)
        guard POSIXFile.isDirectory(atPath: real) else {
            throw FlueError(.invalidFileOperation, "the sandbox root \(root) is not a directory")
        }
        return real
    }

    // MARK: Sandbox — files

    /// The file's bytes. Throws `file_not_found`, `path_outside_sandbox`, or
    /// `invalid_file_operation` for a directory, something that is not a regular file, or a file
    /// over 256 MiB (page through such files with `bash`: `head`, `sed -n`).
    public func readFile(_ path: String) async throws -> Data {
        let target = try confine(path)
        return try locks.withLock(target.real) { try POSIXFile.load(target) }
    }

    /// Creates or replaces the file (mode `0666` less the umask for a new file; an existing file
    /// keeps its mode), creating missing parent directories. Throws `path_outside_sandbox`, or
    /// `invalid_file_operation` when the path is a directory or a parent is a file.
    public func writeFile(_ path: String, _ data: Data) async throws {
        let target = try confine(path)
        guard target.real != root else { throw FlueError(.invalidFileOperation, "\(target.shown) is a directory") }
        try locks.withLock(target.real) {
            try POSIXFile.makeDirectories(SandboxPath.parent(target.real), below: root)
            try POSIXFile.store(data, to: target)
        }
    }

    /// What is at `path` (a symbolic link inside the root reports its target), or `nil` when
    /// nothing is. Throws `path_outside_sandbox`.
    public func stat(_ path: String) async throws -> SandboxFileInfo? {
        try POSIXFile.info(try confine(path))
    }

    /// The entries of a directory, sorted by name. A symbolic link is listed as a file
    /// (`isDirectory` false) whatever it points to, so walks (`grep`, `glob`) never follow links
    /// out of the root or around a loop. Throws `file_not_found`, `path_outside_sandbox`, or
    /// `invalid_file_operation` for a file.
    public func list(_ path: String) async throws -> [SandboxEntry] {
        try POSIXFile.list(try confine(path))
    }

    /// Creates the directory and any missing parents (`mkdir -p`); an existing directory is fine.
    /// Throws `path_outside_sandbox`, or `invalid_file_operation` when a file is in the way.
    public func makeDirectory(_ path: String) async throws {
        try POSIXFile.makeDirectories(try confine(path).real, below: root)
    }

    /// Removes a file, or a directory (with its contents when `recursive`; links inside are removed,
    /// never followed). A symbolic link at `path` is removed itself, not its target. The root cannot
    /// be removed. Throws `file_not_found`, `path_outside_sandbox`, or `invalid_file_operation`
    /// (a non-empty directory without `recursive`, the root).
    public func remove(_ path: String, recursive: Bool) async throws {
        let target = try confine(path, followingFinalLink: false)
        guard target.real != root else {
            throw FlueError(.invalidFileOperation, "\(target.shown) is the sandbox root (the working directory) and cannot be removed")
        }
        try POSIXFile.remove(target, recursive: recursive)
    }

    /// Replaces the file's UTF-8 text with `transform` of it in one step for this process: calls on
    /// the same file (through this sandbox, or any other `LocalSandbox` sharing its lock table, as
    /// the ones of one ``SandboxProvider/local(root:isolation:environment:perInstance:)`` do) wait
    /// for each other, so parallel `edit` calls all apply. A command writing the file at the same
    /// time is not held back. Throws as ``readFile(_:)`` and ``writeFile(_:_:)``, and what
    /// `transform` throws.
    public func updateText(_ path: String, _ transform: (String) throws -> String) async throws {
        let target = try confine(path)
        try locks.withLock(target.real) {
            let text = String(decoding: try POSIXFile.load(target), as: UTF8.self)
            try POSIXFile.store(Data(try transform(text).utf8), to: target)
        }
    }
}
