import FlueRuntime
import Subprocess

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a finished command left.
struct ProcessOutcome: Sendable {
    var stdout: CappedOutput
    var stderr: CappedOutput
    /// The exit status as a shell reports it: the exit code, or 128 + the signal that ended it.
    var exitCode: Int32
    /// The timeout stopped it.
    var timedOut: Bool
}

/// Runs one program in its own session and process group (swift-subprocess, `createSession`),
/// reading stdout and stderr at once (each capped, the rest drained), and makes sure nothing of
/// the group outlives the call:
///
/// - on the timeout: `SIGTERM` to the whole group, then `SIGKILL` to the group after ``grace``;
/// - on cancellation of the calling task: `SIGKILL` to the group at once (swift-subprocess also
///   kills the leader);
/// - when the program exits on its own: `SIGKILL` to whatever it left running in its group
///   (`sleep 100 &`), so a command cannot leave processes behind.
///
/// Group signals are sent while the leader is not yet reaped, so its pid — the group id — cannot
/// have been reused by an unrelated process. A process that leaves the group itself (`setsid`)
/// escapes these kills; bubblewrap's pid namespace does not let it (killing `bwrap` ends the
/// namespace).
enum ProcessRunner {
    /// How long the group has between `SIGTERM` and `SIGKILL` after a timeout.
    static let grace: Duration = .milliseconds(250)

    /// Runs `executable` with `arguments` and exactly `environment`, in `workingDirectory`.
    /// Throws `CancellationError` when the calling task was cancelled (the group is killed first),
    /// and `FlueError` `sandbox_unavailable` when the program cannot be started.
    static func run(
        executable: String, arguments: [String], environment: [String: String], workingDirectory: String,
        timeout: Duration, outputLimit: Int
    ) async throws -> ProcessOutcome {
        var platform = PlatformOptions()
        // setsid(): a new session and process group led by the child (group id = its pid), with no
        // controlling terminal.
        platform.createSession = true
        var variables: [Subprocess.Environment.Key: String] = [:]
        for (name, value) in environment {
            if let key = Subprocess.Environment.Key(rawValue: name) { variables[key] = value }
        }
        let configuration = Configuration(
            executable: .path(.init(executable)), arguments: Arguments(arguments), environment: .custom(variables),
            workingDirectory: .some(.init(workingDirectory)), platformOptions: platform)
        let result: ExecutionResult<Supervised, SequenceOutput, SequenceOutput>
        do {
            result = try await Subprocess.run(configuration, input: .none, output: .sequence, error: .sequence) { execution in
                await supervise(execution, timeout: timeout, outputLimit: outputLimit)
            }
        } catch let error as SubprocessError {
            if Task.isCancelled { throw CancellationError() }
            throw FlueError(.sandboxUnavailable, "could not run \(executable): \(error)")
        }
        if Task.isCancelled { throw CancellationError() }
        let exitCode: Int32
        switch result.terminationStatus {
        case .exited(let code): exitCode = code
        case .signaled(let signal):
            let (sum, overflow) = Int32(128).addingReportingOverflow(signal)
            exitCode = overflow ? Int32.max : sum
        }
        let supervised = result.closureResult
        return ProcessOutcome(
            stdout: supervised.stdout, stderr: supervised.stderr, exitCode: exitCode, timedOut: supervised.timedOut)
    }

    /// What ``supervise(_:timeout:outputLimit:)`` collected.
    struct Supervised: Sendable {
        var stdout: CappedOutput
        var stderr: CappedOutput
        var timedOut: Bool
    }

    private enum Event: Sendable {
        case stdout(CappedOutput)
        case stderr(CappedOutput)
        case deadline
        case timerStopped
        case exited
    }

    /// Reads both streams, enforces the timeout and cancellation, and once the leader has exited
    /// kills what is left of its group; returns before swift-subprocess reaps the leader.
    private static func supervise(
        _ execution: Execution<NoInput, SequenceOutput, SequenceOutput>, timeout: Duration, outputLimit: Int
    ) async -> Supervised {
        let group = execution.processIdentifier.value
        return await withTaskGroup(of: Event.self) { tasks in
            tasks.addTask { .stdout(await collect(execution.standardOutput, limit: outputLimit)) }
            tasks.addTask { .stderr(await collect(execution.standardError, limit: outputLimit)) }
            tasks.addTask {
                do {
                    try await Task.sleep(for: timeout)
                    return .deadline
                } catch {
                    return .timerStopped
                }
            }
            var stdout: CappedOutput?
            var stderr: CappedOutput?
            var timedOut = false
            var waitingForExit = false
            while let event = await tasks.next() {
                switch event {
                case .stdout(let output): stdout = output
                case .stderr(let output): stderr = output
                case .deadline:
                    timedOut = true
                    await terminate(group: group)
                case .timerStopped:
                    // The calling task was cancelled (or the leader exited and the timer was
                    // stopped below; then the kill finds only leftovers).
                    signalGroup(group, SIGKILL)
                case .exited:
                    tasks.cancelAll()
                }
                // Both streams are closed (or abandoned once the leader exited): wait for the
                // leader itself, which may still run with its output closed.
                if stdout != nil, stderr != nil, !waitingForExit {
                    waitingForExit = true
                    tasks.addTask {
                        await waitForExit(group)
                        return .exited
                    }
                }
            }
            // The leader has exited (or was killed) and is not reaped yet: clear the group.
            signalGroup(group, SIGKILL)
            return Supervised(
                stdout: stdout ?? CappedOutput(limit: outputLimit), stderr: stderr ?? CappedOutput(limit: outputLimit),
                timedOut: timedOut)
        }
    }

    /// A stream read to its end (or until swift-subprocess stops it once the leader has exited),
    /// keeping at most `limit` bytes.
    private static func collect(_ stream: SubprocessOutputSequence, limit: Int) async -> CappedOutput {
        var output = CappedOutput(limit: limit)
        do {
            for try await buffer in stream {
                buffer.withUnsafeBytes { output.append($0) }
            }
        } catch {
            // A read error ends the stream; what was read is kept.
        }
        return output
    }

    /// `SIGTERM` to the group, then `SIGKILL` after the grace period (at once if the calling task
    /// is cancelled meanwhile).
    private static func terminate(group: pid_t) async {
        signalGroup(group, SIGTERM)
        try? await Task.sleep(for: grace)
        signalGroup(group, SIGKILL)
    }

    /// Sends `signal` to process group `group` (never to our own: `group` is a child's pid, and
    /// the child leads its own session).
    /// Never once the leader is reaped: its pid (the group id) could then belong to an unrelated
    /// process. swift-subprocess 1.0.x reaps only after the body returns, which is why
    /// Package.swift pins it to `1.0.x`; the check guards against an earlier reap anyway.
    private static func signalGroup(_ group: pid_t, _ signal: Int32) {
        guard group > 1, !isReaped(group) else { return }
        _ = kill(-group, signal)
    }

    /// Whether our child `pid` has been reaped already (waiting for it finds no such child).
    static func isReaped(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        return waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 && errno == ECHILD
    }

    /// Returns once `pid` (our child) has exited, without reaping it (swift-subprocess does).
    /// Polls, from 1 ms up to 50 ms apart; returns at once if the calling task is cancelled.
    private static func waitForExit(_ pid: pid_t) async {
        var delay = 1
        while !hasExited(pid) {
            do { try await Task.sleep(for: .milliseconds(delay)) } catch { return }
            delay = min(delay * 2, 50)
        }
    }

    /// Whether our child `pid` has exited (a zombie not yet reaped counts), leaving it unreaped.
    static func hasExited(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 else {
            return errno == ECHILD  // already reaped
        }
        #if os(Linux)
        return info._sifields._sigchld.si_pid != 0
        #else
        return info.si_pid != 0
        #endif
    }
}
