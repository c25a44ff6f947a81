import FlueRuntime
import Synchronization

extension SandboxProvider {
    /// ``LocalSandbox``es over a real directory on the host.
    ///
    /// - Parameters:
    ///   - root: the directory (created when missing).
    ///   - isolation: how commands run; read the security note on ``LocalSandbox`` before using
    ///     ``LocalSandbox/Isolation/none`` with untrusted input.
    ///   - environment: variables added to every command's environment.
    ///   - perInstance: `false` (the default): **one** sandbox on `root`, shared by every instance
    ///     of every agent using this provider and by all their sessions — they see and change the
    ///     same files. `true`: a directory per agent instance, `root/<agent>/<instance id>` (each
    ///     name percent-encoded into one safe file name: bytes other than ASCII letters, digits,
    ///     `.`, `_` and `-` become `%XX`, so distinct ids never share a directory; a name whose
    ///     encoding exceeds the file system's 255 bytes fails with `invalid_file_operation`);
    ///     the harnesses of one instance share it.
    ///
    /// The sandbox (for `perInstance`, the first one) is created when first opened, so an
    /// unavailable bubblewrap fails the first prompt (or ``Harness/files``) with
    /// `sandbox_unavailable`; create a ``LocalSandbox`` at startup and pass it with
    /// ``SandboxProvider/init(open:)`` to fail earlier. The sandboxes of one provider share one
    /// lock table, so `edit`s of one file through different harnesses still apply one at a time.
    public static func local(
        root: String, isolation: LocalSandbox.Isolation = .none, environment: [String: String] = [:],
        perInstance: Bool = false
    ) -> SandboxProvider {
        let state = LocalSandboxes()
        return SandboxProvider { scope in
            guard perInstance else {
                if let shared = state.shared.withLock({ $0 }) { return shared }
                let fresh = try await LocalSandbox(
                    root: root, isolation: isolation, environment: environment, bubblewrapSearchPath: nil,
                    locks: state.locks)
                return state.shared.withLock { shared in
                    if let raced = shared { return raced }
                    shared = fresh
                    return fresh
                }
            }
            let directory = (root.hasSuffix("/") ? root : root + "/")
                + LocalSandboxes.directoryName(scope.agent) + "/" + LocalSandboxes.directoryName(scope.instanceId)
            if let launcher = state.launcher.withLock({ $0 }) {
                return try LocalSandbox(
                    root: directory, isolation: isolation, environment: environment, launcher: launcher, locks: state.locks)
            }
            let fresh = try await LocalSandbox(
                root: directory, isolation: isolation, environment: environment, bubblewrapSearchPath: nil,
                locks: state.locks)
            state.launcher.withLock { $0 = fresh.launcher }
            return fresh
        }
    }
}

/// What one `local` provider keeps: the shared sandbox, or the launcher already verified for
/// per-instance ones, and the lock table they all use.
final class LocalSandboxes: Sendable {
    let shared = Mutex<LocalSandbox?>(nil)
    let launcher = Mutex<Launcher?>(nil)
    let locks = PathLocks()

    /// `name` as one path component, reversibly (distinct names never share a directory):
    /// ASCII letters, digits, `.`, `_` and `-` are kept, every other byte of its UTF-8 becomes
    /// `%XX`; `.` and `..` become `%2E` and `%2E%2E`, the empty name `%`.
    static func directoryName(_ name: String) -> String {
        if name.isEmpty { return "%" }
        if name == "." || name == ".." { return String(repeating: "%2E", count: name.count) }
        var encoded = ""
        for byte in name.utf8 {
            let scalar = Unicode.Scalar(byte)
            if ("0"..."9").contains(scalar) || ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
                || "._-".unicodeScalars.contains(scalar)
            {
                encoded.unicodeScalars.append(scalar)
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                encoded += "%" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return encoded
    }
}
