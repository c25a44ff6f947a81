import FlueLocalSandbox
import FlueRuntime
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A fresh real directory (symlinks resolved) for one test, removed by `body`'s end.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let template = NSTemporaryDirectory() + "/flue-local-sandbox-XXXXXX"
    var bytes = Array(template.utf8CString)
    guard let made = mkdtemp(&bytes) else { throw FlueError(.invalidFileOperation, "mkdtemp failed") }
    guard let real = realpath(made, nil) else { throw FlueError(.invalidFileOperation, "realpath failed") }
    let directory = String(cString: real)
    free(real)
    // Removal does not follow links (the tests leave links to outside directories behind).
    defer { try? FileManager.default.removeItem(atPath: directory) }
    return try await body(directory)
}

/// Writes a host file (outside any sandbox API).
func hostWrite(_ path: String, _ text: String) throws {
    try FileManager.default.createDirectory(
        atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try text.write(toFile: path, atomically: false, encoding: .utf8)
}

/// A host file's text, or nil.
func hostRead(_ path: String) -> String? {
    try? String(contentsOfFile: path, encoding: .utf8)
}

/// Whether `pid` is a live process: it exists and is not a zombie (a killed orphan may linger as
/// a zombie until the host's init reaps it).
func isRunning(_ pid: Int32) -> Bool {
    guard let stat = hostRead("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
    return state != "Z" && state != "X"
}

/// Live processes whose command line contains `text` (from /proc).
func processes(matching text: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let line = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
        return line.contains(text) && isRunning(pid)
    }
}

/// Waits until `condition` holds (every 20 ms, up to `timeout`); whether it did.
func eventually(timeout: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}

/// Whether `bwrap` is installed here (the bubblewrap tests need it).
let bubblewrapInstalled: Bool = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    .split(separator: ":").contains { access(String($0) + "/bwrap", X_OK) == 0 }

/// A model resolver for harnesses that never reach a model.
struct NoModels: ModelResolver {
    func client(for model: ModelSpecifier) throws -> any ModelClient {
        throw FlueError(.modelNotConfigured, "no models in these tests")
    }
    var defaultModel: ModelSpecifier? { nil }
}
