#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `bwrap` command line that runs a shell command isolated (see
/// ``LocalSandbox/Isolation/bubblewrap`` for what the sandbox holds).
struct BubblewrapCommand: Sendable, Hashable {
    /// The `bwrap` executable (absolute).
    var executable: String
    /// The shell run inside.
    var shell: String
    /// How the host's system directories appear inside: `--ro-bind`s and `--symlink`s.
    var systemMounts: [String]

    /// Where system programs and libraries live. `/usr` and `/etc` are bound read-only; each of the
    /// others is re-created as the same symbolic link when it is one on the host (merged `/usr`),
    /// else bound read-only when it exists.
    static let systemDirectories = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]

    /// `bwrap` found in the `:`-separated directories of `searchPath`, with the host's layout read.
    static func find(searchPath: String, shell: String) -> BubblewrapCommand? {
        for directory in searchPath.split(separator: ":") where directory.hasPrefix("/") {
            let candidate = String(directory) + "/bwrap"
            if access(candidate, X_OK) == 0, !POSIXFile.isDirectory(atPath: candidate) {
                return BubblewrapCommand(executable: candidate, shell: shell, systemMounts: hostMounts())
            }
        }
        return nil
    }

    /// The system directories of this host as `bwrap` options.
    static func hostMounts() -> [String] {
        var options = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
        for directory in systemDirectories {
            switch POSIXFile.linkKind(directory) {
            case .link?:
                if let target = POSIXFile.readLink(directory) { options += ["--symlink", target, directory] }
            case .directory?:
                options += ["--ro-bind", directory, directory]
            default:
                continue
            }
        }
        return options
    }

    /// The arguments of `bwrap` running `shell -c command` in `workingDirectory`, with `root`
    /// writable at its own path. Environment variables are not on this command line (`--setenv`
    /// would show their values to every user in `/proc/<pid>/cmdline`): `bwrap` is started with
    /// exactly the allowlisted environment and hands it on unchanged.
    func arguments(command: String, root: String, workingDirectory: String) -> [String] {
        var arguments = [
            "--unshare-all",  // network (loopback only), pid, ipc, uts, cgroup, user where possible
            "--die-with-parent",  // killing bwrap (the process group kill) kills the sandbox
            "--new-session",  // no TIOCSTI into a terminal
            "--cap-drop", "ALL",  // even as root: no remounting, no raw sockets
        ]
        arguments += systemMounts
        arguments += [
            "--proc", "/proc",
            "--dev", "/dev",
            "--tmpfs", "/tmp",
            // After /tmp, so that a root below /tmp is mounted over the private tmpfs.
            "--bind", root, root,
            "--chdir", workingDirectory,
            "--", shell, "-c", command,
        ]
        return arguments
    }
}
