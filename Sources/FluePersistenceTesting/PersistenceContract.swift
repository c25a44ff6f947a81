import FluePersistence
import FlueRuntime
import Foundation

/// A broken promise of the adapter contract.
public struct ContractViolation: Error, CustomStringConvertible, Sendable {
    public var check: String
    public var message: String
    public var description: String { "\(check): \(message)" }
}

/// One executable clause of the persistence contract.
public struct ContractCheck: Sendable, CustomStringConvertible {
    public let name: String
    let body: @Sendable (FlueStores, any PersistenceAdapter) async throws -> Void
    public var description: String { name }

    /// Runs the check against a freshly migrated and connected adapter.
    public func run(on adapter: any PersistenceAdapter) async throws {
        try await adapter.migrate()
        let stores = try await adapter.connect()
        do {
            try await body(stores, adapter)
        } catch {
            try? await adapter.close()
            throw error
        }
        try await adapter.close()
    }
}

/// The definition of a correct adapter: every adapter runs every check with identical assertions.
///
/// ```swift
/// @Test(arguments: PersistenceContract.checks)
/// func sqlite(_ check: ContractCheck) async throws {
///     try await check.run(on: SQLitePersistence(path: temporaryFile()))
/// }
/// ```
/// Each check uses ids unique to itself, so checks may share one database.
public enum PersistenceContract {
    public static let checks: [ContractCheck] =
        runChecks + streamChecks + sessionChecks + submissionChecks + controlChecks + [schemaVersionCheck]

    static func expect(
        _ condition: Bool, _ message: @autoclosure () -> String, check: String = #function
    ) throws {
        if !condition { throw ContractViolation(check: check, message: message()) }
    }

    static func unique(_ prefix: String) -> String { FlueID.make(prefix) }

    /// Timestamps are stored with millisecond precision (the wire format's).
    static func sameMillisecond(_ a: Date?, _ b: Date?) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        return abs(a.timeIntervalSince1970 - b.timeIntervalSince1970) < 0.001
    }

    // MARK: runs

    static let runChecks: [ContractCheck] = [
        ContractCheck(name: "runs: create is first-writer-wins, get returns the record") { stores, _ in
            let id = unique("run")
            let started = Date(timeIntervalSince1970: 1_764_000_000.123)
            let record = RunRecord(
                runId: id, workflowName: "wf", startedAt: started, payload: ["a": 1], owner: "p1", heartbeatAt: started)
            try expect(try await stores.runs.createRun(record), "first create must win")
            var second = record
            second.workflowName = "other"
            try expect(!(try await stores.runs.createRun(second)), "second create must lose")
            let stored = try await stores.runs.getRun(id)
            try expect(stored?.workflowName == "wf", "the first record is kept, got \(String(describing: stored))")
            try expect(stored?.payload == ["a": 1], "payload round-trips")
            try expect(stored?.status == .active, "a new run is active")
            try expect(sameMillisecond(stored?.startedAt, started), "startedAt keeps milliseconds: \(String(describing: stored?.startedAt))")
            try expect(try await stores.runs.lookupRun(id)?.workflowName == "wf", "lookup finds the pointer")
            try expect(try await stores.runs.getRun(unique("run")) == nil, "unknown runs are nil")
            try expect(stored?.startedBy == nil, "a run started without a principal has no startedBy")
        },
        ContractCheck(name: "runs and submissions: the trace context round-trips") { stores, _ in
            let context = ["traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "vendor=1"]
            let runId = unique("run")
            _ = try await stores.runs.createRun(
                RunRecord(runId: runId, workflowName: "wf", startedAt: Date(), payload: nil, traceContext: context))
            try expect(try await stores.runs.getRun(runId)?.traceContext == context, "a run keeps its trace context")
            let plain = unique("run")
            _ = try await stores.runs.createRun(RunRecord(runId: plain, workflowName: "wf", startedAt: Date(), payload: nil))
            try expect(try await stores.runs.getRun(plain)?.traceContext == nil, "a run without one has none")
            var new = newSubmission(freshKey())
            new.traceContext = context
            let admitted = try await stores.submissions.admit(new).record
            try expect(admitted.traceContext == context, "a submission keeps its trace context: \(String(describing: admitted.traceContext))")
            var retry = new
            retry.traceContext = ["traceparent": "00-11111111111111111111111111111111-2222222222222222-01"]
            let again = try await stores.submissions.admit(retry)
            try expect(again == .existing(admitted), "a retry from another trace is the same admission: \(again)")
        },
        ContractCheck(name: "runs: the principal that started a run is kept on the record and the pointer") { stores, _ in
            let id = unique("run")
            _ = try await stores.runs.createRun(
                RunRecord(runId: id, workflowName: "wf", startedAt: Date(), payload: nil, startedBy: "alice@example.com"))
            try expect(try await stores.runs.getRun(id)?.startedBy == "alice@example.com", "the record keeps startedBy")
            try expect(try await stores.runs.lookupRun(id)?.startedBy == "alice@example.com", "the pointer carries startedBy")
            _ = try await stores.runs.endRun(id, .completed(["ok": true]), endedAt: Date(), durationMs: 1)
            try expect(try await stores.runs.getRun(id)?.startedBy == "alice@example.com", "ending a run keeps startedBy")
        },
        ContractCheck(name: "runs: end is first-terminal-state-wins") { stores, _ in
            let id = unique("run")
            _ = try await stores.runs.createRun(RunRecord(runId: id, workflowName: "wf", startedAt: Date(), payload: nil))
            let end = Date(timeIntervalSince1970: 1_764_000_100.5)
            try expect(
                try await stores.runs.endRun(
                    id, .completed(["ok": true]), endedAt: end, durationMs: 42),
                "first end wins")
            try expect(
                !(try await stores.runs.endRun(
                    id, .failed(["x": 1]), endedAt: Date(), durationMs: 1)),
                "second end loses")
            let stored = try await stores.runs.getRun(id)
            try expect(stored?.status == .completed, "status stays completed")
            try expect(stored?.result == ["ok": true], "result kept")
            try expect(stored?.durationMs == 42 && stored?.isError == false, "duration and isError kept")
            try expect(sameMillisecond(stored?.endedAt, end), "endedAt kept")
            try expect(
                !(try await stores.runs.endRun(
                    unique("run"), .completed(.null), endedAt: Date(), durationMs: 1)),
                "ending an unknown run is a no-op")
        },
        ContractCheck(name: "runs: listing is newest first with an opaque cursor and filters") { stores, _ in
            let workflow = unique("wf")
            let base = Date(timeIntervalSince1970: 1_700_000_000)
            var ids: [String] = []
            for index in 0..<5 {
                let id = "run_\(workflow)_\(index)"
                ids.append(id)
                _ = try await stores.runs.createRun(
                    RunRecord(runId: id, workflowName: workflow, startedAt: base.addingTimeInterval(Double(index)), payload: nil))
            }
            try await stores.runs.endRun(ids[1], .failed(["e": 1]), endedAt: Date(), durationMs: 1)
            let first = try await stores.runs.listRuns(status: nil, workflowName: workflow, limit: 2, cursor: nil)
            try expect(first.runs.map(\.runId) == [ids[4], ids[3]], "newest first: \(first.runs.map(\.runId))")
            let cursor = try first.nextCursor ?? { throw ContractViolation(check: "listing", message: "no cursor") }()
            let second = try await stores.runs.listRuns(status: nil, workflowName: workflow, limit: 2, cursor: cursor)
            try expect(second.runs.map(\.runId) == [ids[2], ids[1]], "second page: \(second.runs.map(\.runId))")
            let third = try await stores.runs.listRuns(status: nil, workflowName: workflow, limit: 2, cursor: second.nextCursor)
            try expect(third.runs.map(\.runId) == [ids[0]] && third.nextCursor == nil, "last page")
            let errored = try await stores.runs.listRuns(status: .errored, workflowName: workflow, limit: 10, cursor: nil)
            try expect(errored.runs.map(\.runId) == [ids[1]], "status filter")
        },
        ContractCheck(name: "runs: stale runs are claimed once, heartbeats keep runs alive") { stores, _ in
            let old = Date(timeIntervalSince1970: 1_600_000_000)
            let alive = unique("run")
            let stale = unique("run")
            _ = try await stores.runs.createRun(RunRecord(runId: alive, workflowName: "wf", startedAt: old, payload: nil, owner: "alive-owner", heartbeatAt: old))
            _ = try await stores.runs.createRun(RunRecord(runId: stale, workflowName: "wf", startedAt: old, payload: nil, owner: "dead-owner", heartbeatAt: old))
            let now = Date()
            try await stores.runs.heartbeatRuns(owner: "alive-owner", at: now)
            let threshold = now.addingTimeInterval(-30)
            async let a = stores.runs.claimStaleRuns(staleBefore: threshold, newOwner: "r1", now: now, limit: 1000)
            async let b = stores.runs.claimStaleRuns(staleBefore: threshold, newOwner: "r2", now: now, limit: 1000)
            let claimed = try await a + b
            let mine = claimed.filter { $0.runId == stale || $0.runId == alive }
            try expect(mine.map(\.runId) == [stale], "exactly the stale run, once: \(mine.map(\.runId))")
            try expect(mine.first?.owner == "r1" || mine.first?.owner == "r2", "owner changed")
            let again = try await stores.runs.claimStaleRuns(staleBefore: threshold, newOwner: "r3", now: now, limit: 1000)
            try expect(!again.contains { $0.runId == stale }, "a freshly claimed run is not stale")
        },
    ]

    // MARK: streams

    static let streamChecks: [ContractCheck] = [
        ContractCheck(name: "streams: create is idempotent, appends get increasing offsets, reads are strictly after") { stores, _ in
            let path = "runs/\(unique("run"))"
            try await stores.streams.createStream(path)
            try await stores.streams.createStream(path)
            var offsets: [StreamOffset] = []
            for index in 0..<5 {
                offsets.append(try await stores.streams.append(path, Data(#"{"i":\#(index)}"#.utf8)))
            }
            try expect(offsets.map(\.sequence) == [0, 1, 2, 3, 4], "offsets \(offsets)")
            try expect(offsets[2].description == "0000000000000000_0000000000000003", "offset text: events up to and including this one")
            let all = try await stores.streams.read(path, after: .start, limit: 100)
            try expect(all.events.count == 5 && all.upToDate && !all.closed, "read all")
            try expect(all.events.map { String(decoding: $0.data, as: UTF8.self) }.first == #"{"i":0}"#, "data round-trips")
            try expect(all.nextOffset == offsets[4], "nextOffset is the last offset")
            let after = try await stores.streams.read(path, after: offsets[1], limit: 2)
            try expect(after.events.map(\.offset) == [offsets[2], offsets[3]], "strictly after, limited")
            try expect(!after.upToDate && after.nextOffset == offsets[3], "not up to date when more remain")
            let atTail = try await stores.streams.read(path, after: offsets[4], limit: 100)
            try expect(atTail.events.isEmpty && atTail.upToDate && atTail.nextOffset == offsets[4], "at the tail")
            let exactly = try await stores.streams.read(path, after: offsets[2], limit: 2)
            try expect(exactly.upToDate, "a read that ends exactly at the tail is up to date")
            let meta = try await stores.streams.meta(path)
            try expect(meta?.tail == offsets[4] && meta?.closed == false, "meta tail \(String(describing: meta))")
            let emptyPath = "runs/\(unique("run"))"
            try await stores.streams.createStream(emptyPath)
            try expect(try await stores.streams.meta(emptyPath)?.tail == .start, "an empty stream's tail is -1")
        },
        ContractCheck(name: "streams: close keeps history, refuses appends, and shows in reads and meta") { stores, _ in
            let path = "runs/\(unique("run"))"
            try await stores.streams.createStream(path)
            try await stores.streams.append(path, Data("{}".utf8))
            try await stores.streams.closeStream(path)
            try await stores.streams.closeStream(path)
            let read = try await stores.streams.read(path, after: .start, limit: 100)
            try expect(read.events.count == 1 && read.closed && read.upToDate, "closed history readable")
            try expect(try await stores.streams.meta(path)?.closed == true, "meta says closed")
            do {
                try await stores.streams.append(path, Data("{}".utf8))
                throw ContractViolation(check: "close", message: "append to a closed stream must throw")
            } catch let error as EventStreamError {
                try expect(error == .streamClosed(path), "closed error, got \(error)")
            }
        },
        ContractCheck(name: "streams: a missing stream reads empty and up to date; appending to it throws") { stores, _ in
            let path = "agents/\(unique("a"))/x"
            let read = try await stores.streams.read(path, after: .start, limit: 100)
            try expect(read.events.isEmpty && read.upToDate && !read.closed, "empty up-to-date")
            try expect(try await stores.streams.meta(path) == nil, "no meta")
            do {
                try await stores.streams.append(path, Data("{}".utf8))
                throw ContractViolation(check: "missing", message: "append to a missing stream must throw")
            } catch let error as EventStreamError {
                try expect(error == .streamNotFound(path), "not-found error, got \(error)")
            }
        },
        ContractCheck(name: "streams: any offset and any limit read safely (before the start, past the tail, extremes)") {
            stores, _ in
            let path = "runs/\(unique("run"))"
            try await stores.streams.createStream(path)
            for index in 0..<3 { try await stores.streams.append(path, Data(#"{"i":\#(index)}"#.utf8)) }
            let extremes: [Int64] = [.min, -2, -1, 0, 2, 3, 1_000, StreamOffset.maxCount, .max - 1, .max]
            for sequence in extremes {
                for limit in [Int.min, -1, 0, 1, 100, Int.max] {
                    let read = try await stores.streams.read(path, after: StreamOffset(sequence: sequence), limit: limit)
                    let expected = Int(min(3, max(0, 2 - max(sequence, -1))))
                    try expect(
                        read.events.count == min(expected, StreamReadLimit.clamped(limit)),
                        "after \(sequence) limit \(limit): \(read.events.count) events, expected \(expected) capped by the limit")
                    try expect(read.events.allSatisfy { $0.offset.sequence > sequence }, "strictly after \(sequence)")
                    try expect(
                        read.upToDate == (read.events.count == expected),
                        "after \(sequence) limit \(limit): up to date only when nothing remains")
                }
            }
            let missing = try await stores.streams.read("runs/\(unique("run"))", after: StreamOffset(sequence: .max), limit: .max)
            try expect(missing.events.isEmpty && missing.upToDate, "a missing stream at an extreme offset reads empty")
            try expect(StreamOffset(sequence: .max).description.count <= 36, "any offset renders without trapping")
            try expect(StreamOffset(sequence: .min).description == StreamOffset.start.description, "before the start renders as the start")
        },
        ContractCheck(name: "streams: concurrent appends never duplicate or skip offsets") { stores, _ in
            let path = "runs/\(unique("run"))"
            try await stores.streams.createStream(path)
            let offsets = try await withThrowingTaskGroup(of: [Int64].self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        var mine: [Int64] = []
                        for index in 0..<25 {
                            mine.append(try await stores.streams.append(path, Data(#"{"w":\#(writer),"i":\#(index)}"#.utf8)).sequence)
                        }
                        return mine
                    }
                }
                var all: [Int64] = []
                for try await part in group { all += part }
                return all
            }
            try expect(offsets.sorted() == Array(0..<200), "200 distinct dense offsets, got \(offsets.count) / \(Set(offsets).count) distinct")
            var read: [StoredEvent] = []
            var cursor = StreamOffset.start
            while true {
                let page = try await stores.streams.read(path, after: cursor, limit: 64)
                read += page.events
                cursor = page.nextOffset
                if page.upToDate { break }
            }
            try expect(read.map(\.offset.sequence) == Array(0..<200), "reads return every event in order")
        },
        ContractCheck(name: "streams: batches get dense offsets in order, never interleaved with other writers") { stores, _ in
            let path = "runs/\(unique("run"))"
            try await stores.streams.createStream(path)
            let lasts = try await withThrowingTaskGroup(of: Int64.self) { group in
                for writer in 0..<6 {
                    group.addTask {
                        var last: Int64 = -1
                        for batch in 0..<5 {
                            let events = (0..<4).map { Data(#"{"w":\#(writer),"b":\#(batch),"i":\#($0)}"#.utf8) }
                            last = try await stores.streams.appendBatch(path, events).sequence
                        }
                        return last
                    }
                }
                var all: [Int64] = []
                for try await last in group { all.append(last) }
                return all
            }
            try expect(lasts.max() == 119, "120 events, the last at 119: \(lasts)")
            let read = try await stores.streams.read(path, after: .start, limit: 1000)
            try expect(read.events.map(\.offset.sequence) == Array(0..<120), "dense offsets")
            let decoded = read.events.compactMap { try? JSONValue(parsing: $0.data) }
            for start in stride(from: 0, to: 120, by: 4) {
                let batch = decoded[start..<start + 4]
                try expect(Set(batch.map { $0["w"] }).count == 1 && Set(batch.map { $0["b"] }).count == 1, "a batch is contiguous")
                try expect(batch.map { $0["i"] } == [0, 1, 2, 3], "in order within the batch")
            }
            try await stores.streams.closeStream(path)
            do {
                try await stores.streams.appendBatch(path, [Data("{}".utf8)])
                throw ContractViolation(check: "batch", message: "a batch to a closed stream must throw")
            } catch let error as EventStreamError {
                try expect(error == .streamClosed(path), "closed error, got \(error)")
            }
            try expect(try await stores.streams.meta(path)?.tail.sequence == 119, "nothing of a refused batch is stored")
        },
        ContractCheck(name: "streams: subscribers wake on append and close") { stores, _ in
            let path = "runs/\(unique("run"))"
            try await stores.streams.createStream(path)
            let changes = stores.streams.subscribe(path)
            let waiter = Task {
                for await _ in changes { return true }
                return false
            }
            try await stores.streams.append(path, Data("{}".utf8))
            let timeout = Task {
                try? await Task.sleep(for: .seconds(5))
                waiter.cancel()
            }
            let woke = await waiter.value
            timeout.cancel()
            try expect(woke, "a subscriber is woken by an append within 5 s")
        },
    ]

    // MARK: sessions

    static let sessionChecks: [ContractCheck] = [
        ContractCheck(name: "sessions: save, load, overwrite and delete a snapshot") { stores, _ in
            let key = SessionKey(agent: "assistant", instanceId: unique("i"))
            try expect(try await stores.sessions.loadSession(key) == nil, "missing session loads nil")
            var snapshot = SessionSnapshot(
                messages: [.user(text: "hi", images: [])], metadata: ["k": "v"],
                createdAt: Date(timeIntervalSince1970: 1_764_000_000.5))
            try await stores.sessions.saveSession(key, snapshot)
            try expect(try await stores.sessions.loadSession(key) == snapshot, "round trip")
            snapshot.messages.append(.user(text: "again", images: []))
            try await stores.sessions.saveSession(key, snapshot)
            try expect(try await stores.sessions.loadSession(key)?.messages.count == 2, "overwrite")
            var other = key
            other.agent = "other-agent"
            try expect(try await stores.sessions.loadSession(other) == nil, "agent name is part of the key")
            try await stores.sessions.deleteSession(key)
            try expect(try await stores.sessions.loadSession(key) == nil, "deleted")
            try await stores.sessions.deleteSession(key)
        }
    ]

    // MARK: schema version

    static let schemaVersionCheck = ContractCheck(name: "schema: a newer recorded version is refused before any read or write") {
        _, adapter in
        try await adapter.overwriteSchemaVersion(FlueSchema.version + 1)
        do {
            try await adapter.migrate()
            throw ContractViolation(check: "schema", message: "migrate must refuse a newer schema version")
        } catch let error as PersistenceError {
            try expect(
                error == .unsupportedSchemaVersion(stored: FlueSchema.version + 1, supported: FlueSchema.version),
                "unsupported version error, got \(error)")
        }
        try await adapter.overwriteSchemaVersion(FlueSchema.version)
        try await adapter.migrate()
    }
}
