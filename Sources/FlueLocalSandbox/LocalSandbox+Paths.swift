import FlueRuntime

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A path checked against the sandbox root.
struct ConfinedPath: Sendable, Hashable {
    /// The path as the caller wrote it, for messages.
    var given: String
    /// The normalized absolute path (`.` and `..` applied as text), for messages.
    var shown: String
    /// The real path: every existing component's symbolic links resolved (the final one only
    /// when followed), missing components appended as written. Inside the root.
    var real: String
}

extension LocalSandbox {
    /// The most symbolic links one path may pass through (Linux's `MAXSYMLINKS`).
    static let maxLinks = 40

    /// `path` checked against the root: resolved against the working directory, normalized, and
    /// its symbolic links followed through every existing component (the final one unless
    /// `followingFinalLink` is false, for removing a link itself).
    ///
    /// Throws `path_outside_sandbox` when the normalized path, or where its links lead, is not
    /// the root or below it; `invalid_file_operation` when a component cannot be examined (no
    /// permission, a link loop).
    func confine(_ path: String, followingFinalLink: Bool = true) throws -> ConfinedPath {
        let outside = FlueError(.pathOutsideSandbox, "path \(path) leads outside the sandbox (\(root))")
        let lexical: String
        do {
            lexical = try SandboxPath.resolve(path, from: workingDirectory)
        } catch {
            throw outside
        }
        guard isInsideRoot(lexical) else { throw outside }
        let real: String
        if followingFinalLink || lexical == root {
            real = try Self.realPath(lexical, given: path)
        } else {
            let parent = try Self.realPath(SandboxPath.parent(lexical), given: path)
            real = (parent == "/" ? "" : parent) + "/" + SandboxPath.name(lexical)
        }
        guard isInsideRoot(real) else {
            throw FlueError(
                .pathOutsideSandbox, "path \(path) leads outside the sandbox (\(root)) through a symbolic link")
        }
        return ConfinedPath(given: path, shown: lexical, real: real)
    }

    /// Whether a normalized absolute path is the root or below it.
    func isInsideRoot(_ path: String) -> Bool {
        path == root || path.hasPrefix(root == "/" ? "/" : root + "/")
    }

    /// The real path of a normalized absolute path, like `realpath(3)` but tolerating missing
    /// components: symbolic links are followed through every component that exists (dangling
    /// links included, so a link to a file not yet created outside the root still counts as
    /// outside); from the first missing component on, the rest is appended as written, and a
    /// `..` there (from a link's target, `a -> nope/../b`) fails with `file_not_found`.
    static func realPath(_ path: String, given: String) throws -> String {
        var resolved: [Substring] = []
        // Components still to walk, last first (a link's target is pushed in front of the rest).
        var pending: [Substring] = path.split(separator: "/").reversed()
        var links = 0
        var missing = false
        while let part = pending.popLast() {
            if part == "." || part.isEmpty { continue }
            if part == ".." {
                // `..` after a missing component (only a link's target can put it there: the
                // path itself was normalized) is what the kernel refuses with ENOENT; applying
                // it as text would skip the lstat of what follows and let a link through.
                if missing { throw FlueError(.fileNotFound, "\(given): no such file or directory") }
                if !resolved.isEmpty { resolved.removeLast() }
                continue
            }
            if missing {
                resolved.append(part)
                continue
            }
            let candidate = "/" + (resolved + [part]).joined(separator: "/")
            guard let kind = POSIXFile.linkKind(candidate) else {
                let code = errno
                guard code == ENOENT || code == ENOTDIR else {
                    throw FlueError(.invalidFileOperation, "\(given): \(POSIXFile.reason(code))")
                }
                missing = true
                resolved.append(part)
                continue
            }
            guard kind == .link else {
                resolved.append(part)
                continue
            }
            links += 1
            guard links <= maxLinks else {
                throw FlueError(.invalidFileOperation, "\(given): too many levels of symbolic links")
            }
            guard let target = POSIXFile.readLink(candidate) else {
                throw FlueError(.invalidFileOperation, "\(given): \(POSIXFile.reason(errno))")
            }
            if target.hasPrefix("/") { resolved.removeAll() }
            pending.append(contentsOf: target.split(separator: "/").reversed())
        }
        return "/" + resolved.joined(separator: "/")
    }
}
