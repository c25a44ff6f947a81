import Synchronization

/// One lock per file path, made when first needed and dropped when nobody holds or waits for it,
/// so that reads, writes and read-modify-writes of one file in this process happen one at a time
/// (two parallel `edit` calls both apply) while different files proceed in parallel.
///
/// A waiter blocks its thread; the critical sections are single file reads and writes.
package final class PathLocks: Sendable {
    private final class Entry: Sendable {
        let lock = Mutex(())
    }

    private let table = Mutex<[String: (entry: Entry, users: Int)]>([:])

    package init() {}

    /// Runs `body` holding the lock of `path`.
    func withLock<T: Sendable>(_ path: String, _ body: () throws -> T) throws -> T {
        let entry = table.withLock { table in
            let slot = table[path] ?? (Entry(), 0)
            table[path] = (slot.entry, slot.users + 1)
            return slot.entry
        }
        defer {
            table.withLock { table in
                guard let slot = table[path] else { return }
                table[path] = slot.users > 1 ? (slot.entry, slot.users - 1) : nil
            }
        }
        return try entry.lock.withLock { _ in try body() }
    }

    /// Paths with a lock in the table (for tests: it empties when nobody holds one).
    var count: Int { table.withLock { $0.count } }
}
