import FlueRuntime
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file system calls behind ``LocalSandbox``'s file operations, on already confined paths,
/// with `errno` turned into `FlueError`s like ``VirtualSandbox``'s.
enum POSIXFile {
    /// The largest file ``load(_:)`` loads (256 MiB).
    static let maxReadSize = 256 << 20

    enum Kind: Sendable, Hashable {
        case file, directory, link, other
    }

    // MARK: inspecting

    /// What is at `path` without following a final symbolic link; `nil` (and `errno` set) when
    /// `lstat` fails.
    static func linkKind(_ path: String) -> Kind? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return kind(info)
    }

    static func kind(_ info: stat) -> Kind {
        switch info.st_mode & mode_t(S_IFMT) {
        case mode_t(S_IFREG): .file
        case mode_t(S_IFDIR): .directory
        case mode_t(S_IFLNK): .link
        default: .other
        }
    }

    static func isDirectory(atPath path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && kind(info) == .directory
    }

    /// The target of a symbolic link, as written in it.
    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count >= 0 else { return nil }
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The human wording of an `errno` value.
    static func reason(_ code: Int32) -> String {
        String(cString: strerror(code))
    }

    /// `errno` after an operation on `path`, as a `FlueError`.
    static func failure(_ code: Int32, _ path: ConfinedPath) -> FlueError {
        switch code {
        case ENOENT, ENOTDIR: FlueError(.fileNotFound, "\(path.shown): no such file or directory")
        case EISDIR: FlueError(.invalidFileOperation, "\(path.shown) is a directory")
        case EACCES, EPERM: FlueError(.invalidFileOperation, "\(path.shown): permission denied")
        case ELOOP: FlueError(.invalidFileOperation, "\(path.shown) is a symbolic link (it changed while being opened)")
        case ENXIO: FlueError(.invalidFileOperation, "\(path.shown) is not a regular file")
        default: FlueError(.invalidFileOperation, "\(path.shown): \(reason(code))")
        }
    }

    /// What is at `path` (links followed), or `nil` when nothing is.
    static func info(_ path: ConfinedPath) throws -> SandboxFileInfo? {
        var info = stat()
        guard stat(path.real, &info) == 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR { return nil }
            throw failure(code, path)
        }
        let isDirectory = kind(info) == .directory
        return SandboxFileInfo(isDirectory: isDirectory, size: isDirectory ? 0 : Int(info.st_size))
    }

    /// The entries of a directory, sorted by name; links are never directories here.
    static func list(_ path: ConfinedPath) throws -> [SandboxEntry] {
        var info = stat()
        guard stat(path.real, &info) == 0 else { throw failure(errno, path) }
        guard kind(info) == .directory else { throw FlueError(.invalidFileOperation, "\(path.shown) is not a directory") }
        guard let directory = opendir(path.real) else { throw failure(errno, path) }
        defer { closedir(directory) }
        var entries: [SandboxEntry] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            // An entry removed since readdir saw it is left out.
            guard let kind = linkKind(path.real + "/" + name) else { continue }
            entries.append(SandboxEntry(name: name, isDirectory: kind == .directory))
        }
        return entries.sorted { $0.name < $1.name }
    }

    // MARK: reading and writing

    /// The bytes of a regular file. The final component is not followed (it was resolved when
    /// confined; a link put there since fails), and a FIFO or device is refused without blocking.
    static func load(_ path: ConfinedPath) throws -> Data {
        let fd = open(path.real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw failure(errno, path) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure(errno, path) }
        switch kind(info) {
        case .file: break
        case .directory: throw FlueError(.invalidFileOperation, "\(path.shown) is a directory")
        case .link, .other: throw FlueError(.invalidFileOperation, "\(path.shown) is not a regular file")
        }
        guard info.st_size <= maxReadSize else {
            throw FlueError(
                .invalidFileOperation,
                "\(path.shown) is \(info.st_size) bytes, over the \(maxReadSize >> 20) MiB a file operation reads; "
                    + "page through it with bash (head, tail, sed -n)")
        }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure(errno, path)
            }
            if count == 0 { return data }
            data.append(contentsOf: buffer[..<count])
            guard data.count <= maxReadSize else {
                throw FlueError(.invalidFileOperation, "\(path.shown) grew over \(maxReadSize >> 20) MiB while being read")
            }
        }
    }

    /// Replaces the contents of a regular file (created `0666` less the umask), not following a
    /// final link and refusing FIFOs and devices.
    static func store(_ data: Data, to path: ConfinedPath) throws {
        let fd = open(path.real, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0o666)
        guard fd >= 0 else { throw failure(errno, path) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure(errno, path) }
        guard kind(info) == .file else { throw FlueError(.invalidFileOperation, "\(path.shown) is not a regular file") }
        guard ftruncate(fd, 0) == 0 else { throw failure(errno, path) }
        try data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw failure(errno, path)
                }
                offset += written
            }
        }
    }

    // MARK: directories

    /// Creates `real` (a confined real path) and its missing parents below `root`.
    static func makeDirectories(_ real: String, below root: String) throws {
        guard real != root else { return }
        var current = root == "/" ? "" : root
        for part in real.dropFirst(current.count).split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o777) == 0 { continue }
            let code = errno
            let shown = ConfinedPath(given: current, shown: current, real: current)
            guard code == EEXIST else { throw failure(code, shown) }
            switch linkKind(current) {
            case .directory?: continue
            case .link?:
                throw FlueError(.invalidFileOperation, "\(current) became a symbolic link while directories were being created")
            default:
                throw FlueError(.invalidFileOperation, "\(current) is a file, not a directory")
            }
        }
    }

    /// Removes what is at `path` (a final link itself, never its target).
    static func remove(_ path: ConfinedPath, recursive: Bool) throws {
        guard let kind = linkKind(path.real) else { throw failure(errno, path) }
        guard kind == .directory else {
            guard unlink(path.real) == 0 else { throw failure(errno, path) }
            return
        }
        if recursive {
            try removeTree(path.real, shown: path)
        } else if rmdir(path.real) != 0 {
            let code = errno
            if code == ENOTEMPTY || code == EEXIST {
                throw FlueError(.invalidFileOperation, "\(path.shown) is a directory that is not empty")
            }
            throw failure(code, path)
        }
    }

    /// Removes a directory and everything below it, without following links.
    private static func removeTree(_ real: String, shown: ConfinedPath) throws {
        guard let directory = opendir(real) else { throw failure(errno, shown) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(directory)
        for name in names {
            let child = real + "/" + name
            let childShown = ConfinedPath(given: child, shown: shown.shown + "/" + name, real: child)
            switch linkKind(child) {
            case .directory?: try removeTree(child, shown: childShown)
            case nil where errno == ENOENT: continue
            default:
                if unlink(child) != 0, errno != ENOENT { throw failure(errno, childShown) }
            }
        }
        guard rmdir(real) == 0 else { throw failure(errno, shown) }
    }
}
