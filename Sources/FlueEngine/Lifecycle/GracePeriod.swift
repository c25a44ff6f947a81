/// Waits for `tasks` to finish, at most `grace`; then calls `graceOver`, cancels the tasks still
/// running and waits for them. `meanwhile` (lease renewals, say) runs during the wait and is
/// cancelled when it ends. Returns whether every task finished within the grace period. Shutdown
/// of workflow runs and of agent submissions both drain this way.
package func drain<T: Sendable>(
    _ tasks: [Task<T, Never>], grace: Duration, meanwhile: (@Sendable () async -> Void)? = nil,
    graceOver: () -> Void
) async -> Bool {
    await withTaskGroup(of: DrainWaitEnd.self) { group in
        group.addTask {
            for task in tasks { _ = await task.value }
            return .tasks
        }
        group.addTask {
            try? await Task.sleep(for: grace)
            return .grace
        }
        if let meanwhile {
            group.addTask {
                await meanwhile()
                return .meanwhile
            }
        }
        var finished = false
        while let ended = await group.next() {
            if ended == .tasks { finished = true; break }
            if ended == .grace { break }
        }
        if !finished {
            graceOver()
            for task in tasks { task.cancel() }
            for task in tasks { _ = await task.value }
        }
        group.cancelAll()
        return finished
    }
}

/// Which wait of ``drain(_:grace:meanwhile:graceOver:)`` ended.
private enum DrainWaitEnd: Sendable { case tasks, grace, meanwhile }
