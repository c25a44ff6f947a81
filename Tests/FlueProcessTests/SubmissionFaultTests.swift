import AsyncHTTPClient
import FluePersistence
import FluePostgres
import FlueRuntime
import FlueTestSupport
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization
import TestDatabase
import Testing

/// Real `FlueFaultApp` processes on a real Postgres, killed with SIGKILL at the worst moments:
/// every accepted submission must be settled by a surviving process, in order, without running
/// a tool twice.
@Suite(
    .serialized,
    .enabled(
        if: ProcessInfo.processInfo.environment["TEST_DATABASE_URL"] != nil
            || ProcessInfo.processInfo.environment["CI"] != nil,
        "set TEST_DATABASE_URL to run the submission fault tests"))
struct SubmissionFaultTests {
    /// One test's world: a fresh database, a fake model, worker processes and a store view.
    final class Cluster: Sendable {
        let model: FakeModelServer
        let databaseURL: String
        let persistence: PostgresPersistence
        let stores: FlueStores
        let sideEffectLog: String
        let workers = Mutex<[Worker]>([])

        struct Worker: @unchecked Sendable {
            // ChildProcess wraps Foundation.Process (not Sendable); the tests only signal and
            // read it, and Process is thread-safe for those calls.
            let process: ChildProcess
            let base: String
            let owner: String
        }

        init(model: FakeModelServer, databaseURL: String, persistence: PostgresPersistence, stores: FlueStores) {
            self.model = model
            self.databaseURL = databaseURL
            self.persistence = persistence
            self.stores = stores
            self.sideEffectLog = FileManager.default.temporaryDirectory
                .appendingPathComponent("flue-side-effects-\(UUID().uuidString).log").path
        }

        static func start() async throws -> Cluster {
            let url = try await TestDatabase.fresh()
            let persistence = try PostgresPersistence(url: url, logger: Logger(label: "fault-test"))
            try await persistence.migrate()
            let stores = try await persistence.connect()
            return Cluster(model: try await FakeModelServer.start(), databaseURL: url, persistence: persistence, stores: stores)
        }

        /// Starts a worker process with a 2 s lease and a 1 s recovery scan.
        @discardableResult
        func startWorker(_ extra: [String: String] = [:]) async throws -> Worker {
            var environment = ExampleProcessTests.environment(model)
            environment.merge(
                [
                    "DATABASE_URL": databaseURL, "SIDE_EFFECT_LOG": sideEffectLog, "MODEL_SPECIFIER": "anthropic/claude-fake",
                    "SUBMISSION_LEASE_SECONDS": "2", "RECOVERY_SCAN_SECONDS": "1",
                ], uniquingKeysWith: { $1 })
            environment.merge(extra, uniquingKeysWith: { $1 })
            let child = try ChildProcess(executable: "FlueFaultApp", arguments: [], environment: environment)
            let port = try #require(await child.listeningPort(), "no listening line in: \(child.stderr)")
            let owner = try #require(child.stderr.firstMatch(of: /owner=(owner_[a-z0-9-]+)/).map { String($0.1) })
            let worker = Worker(process: child, base: "http://127.0.0.1:\(port)", owner: owner)
            workers.withLock { $0.append(worker) }
            return worker
        }

        /// The worker whose process owns the submission's current attempt.
        func owner(of submissionId: String) async throws -> Worker {
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                if let owner = try await stores.submissions.submission(submissionId)?.owner,
                    let worker = workers.withLock({ $0.first { $0.owner == owner } })
                {
                    return worker
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            throw TestFailure()
        }

        /// SIGKILLs the worker and waits until it is gone; returns when it was killed.
        func kill(_ worker: Worker) async -> ContinuousClock.Instant {
            worker.process.signal(SIGKILL)
            let killed = ContinuousClock.now
            _ = await worker.process.waitForExit()
            return killed
        }

        /// Waits until the submissions are settled and prints how long that took since the kill.
        func awaitRecovery(
            _ ids: [String], killedAt killed: ContinuousClock.Instant, label: String
        ) async throws -> [SubmissionRecord] {
            let records = try await waitSettled(ids, timeout: .seconds(90))
            print("[fault] \(label): kill -9 → last stranded submission settled in \((ContinuousClock.now - killed).wholeMilliseconds) ms")
            return records
        }

        func stop() async {
            for worker in workers.withLock({ $0 }) {
                worker.process.signal(SIGTERM)
                _ = await worker.process.waitForExit()
            }
            try? await persistence.close()
            await model.stop()
            try? FileManager.default.removeItem(atPath: sideEffectLog)
        }

        var sideEffects: [String] {
            ((try? String(contentsOfFile: sideEffectLog, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }

        /// Waits until every submission is settled; returns the records.
        func waitSettled(_ ids: [String], timeout: Duration = .seconds(60)) async throws -> [SubmissionRecord] {
            let deadline = ContinuousClock.now + timeout
            while true {
                var records: [SubmissionRecord] = []
                for id in ids {
                    if let record = try await stores.submissions.submission(id), record.status.isSettled { records.append(record) }
                }
                if records.count == ids.count { return records }
                guard ContinuousClock.now < deadline else {
                    Issue.record("only \(records.count) of \(ids.count) submissions settled")
                    throw TestFailure()
                }
                try await Task.sleep(for: .milliseconds(25))
            }
        }

        func history(_ instance: String) async throws -> [Message] {
            try await stores.sessions.loadSession(SessionKey(agent: "worker", instanceId: instance))?.messages ?? []
        }
    }

    static func prompt(_ base: String, _ instance: String, _ message: String) async throws -> String {
        var request = HTTPClientRequest(url: "\(base)/agents/worker/\(instance)")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: JSONValue.object(["message": .string(message)]).jsonString))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try JSONValue(parsing: Data(try await response.body.collect(upTo: 1 << 16).readableBytesView))
        #expect(response.status == .accepted, "\(body)")
        return try #require(body["submissionId"]?.stringValue)
    }

    /// Every event of an instance stream (catch-up reads until up to date).
    static func events(_ base: String, _ instance: String) async throws -> [JSONValue] {
        var events: [JSONValue] = []
        var offset = "-1"
        while true {
            let response = try await HTTPClient.shared.execute(
                HTTPClientRequest(url: "\(base)/agents/worker/\(instance)?offset=\(offset)"), timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 1 << 24)
            events += (try JSONValue(parsing: Data(body.readableBytesView))).arrayValue ?? []
            offset = response.headers.first(name: "Stream-Next-Offset") ?? offset
            if response.headers.first(name: "Stream-Up-To-Date") == "true" { return events }
        }
    }

    static func settledEvents(_ events: [JSONValue], _ submissionId: String) -> [JSONValue] {
        events.filter { $0["type"] == "submission_settled" && $0["submissionId"]?.stringValue == submissionId }
    }

    /// Runs `body` with a started cluster and always stops it (worker processes included).
    static func withCluster(_ body: (Cluster) async throws -> Void) async throws {
        let cluster = try await Cluster.start()
        do {
            try await body(cluster)
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    // MARK: tests

    /// A call waiting for approval survives a kill -9 of the process that asked: the decision,
    /// made on another process, resumes the submission there and the tool runs exactly once.
    @Test func anApprovalSurvivesAKillOfTheOwnerAndIsDecidedElsewhere() async throws {
        try await Self.withCluster { cluster in
            let first = try await cluster.startWorker()
            await cluster.model.enqueue(
                .toolCall("approved_side_effect", ["label": "wire-money", "sleepMs": 0]), .text("The money is wired."))
            let id = try await Self.prompt(first.base, "treasury", "Wire the money")
            var callId: String?
            let deadline = ContinuousClock.now + .seconds(30)
            while callId == nil, ContinuousClock.now < deadline {
                let response = try await HTTPClient.shared.execute(
                    HTTPClientRequest(url: "\(first.base)/agents/worker/treasury/approvals"), timeout: .seconds(10))
                let body = try JSONValue(parsing: Data(try await response.body.collect(upTo: 1 << 16).readableBytesView))
                callId = body["approvals"]?.arrayValue?.first?["callId"]?.stringValue
                if callId == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            let call = try #require(callId, "the call never waited for approval")
            #expect(try await cluster.stores.submissions.submission(id)?.status == .awaitingApproval)
            _ = await cluster.kill(first)

            let second = try await cluster.startWorker()
            var request = HTTPClientRequest(url: "\(second.base)/agents/worker/treasury/approvals/\(call)")
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: #"{"decision":"approve","reason":"signed off"}"#))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            #expect(response.status == .ok)
            let record = try #require(try await cluster.waitSettled([id]).first)
            #expect(record.status == .completed, "\(String(describing: record.error))")
            #expect(record.owner == second.owner, "the surviving process ran it")
            #expect(cluster.sideEffects.count == 1, "the approved tool ran \(cluster.sideEffects.count) times")
            let events = try await Self.events(second.base, "treasury")
            #expect(events.filter { $0["type"] == "approval_requested" }.count == 1)
            #expect(events.filter { $0["type"] == "approval_decided" }.first?["reason"] == "signed off")
            #expect(Self.settledEvents(events, id).count == 1)
        }
    }

    @Test func aTurnKilledWhileTheModelStreamsResumesFromTheSavedPartialOutput() async throws {
        try await Self.withCluster { cluster in
            try await cluster.startWorker()
            try await cluster.startWorker()
            let words = (1...40).map { "word\($0)" }.joined(separator: " ")
            await cluster.model.enqueue(ScriptedReply(text: words, chunkDelayMs: 120))
            let entry = cluster.workers.withLock { $0[0] }
            let id = try await Self.prompt(entry.base, "story", "Tell a long story")
            let owner = try await cluster.owner(of: id)
            // Let output stream and be saved (segments every 500 ms).
            while try await Self.events(owner.base, "story").filter({ $0["type"] == "text_delta" }).count < 16 {
                try await Task.sleep(for: .milliseconds(50))
            }
            try await Task.sleep(for: .milliseconds(600))
            let killed = await cluster.kill(owner)
            let record = try #require(try await cluster.awaitRecovery([id], killedAt: killed, label: "mid-stream").first)
            #expect(record.status == .completed, "\(String(describing: record.error))")
            #expect(record.attemptCount == 2)
            #expect(try await cluster.stores.submissions.attemptMarkers(id).map(\.attempt) == [1, 2])

            let history = try await cluster.history("story")
            guard history.count == 4, case .assistant(let partial) = history[1], case .user(let note, _) = history[2],
                case .assistant(let final) = history[3]
            else {
                Issue.record("expected input, partial output, continue note, final answer; got \(history)")
                return
            }
            #expect(!partial.text.isEmpty && words.hasPrefix(partial.text), "partial: \(partial.text)")
            #expect(partial.stopReason == .aborted)
            #expect(note.contains("interrupted"))
            #expect(!final.text.isEmpty)
            // The recovering process sent the partial output back to the model.
            let last = try #require(await cluster.model.requests().last)
            #expect(last.body.jsonString.contains(partial.text.replacingOccurrences(of: "\n", with: "\\n")))

            let survivor = try #require(cluster.workers.withLock { $0.first { $0.owner != owner.owner } })
            let events = try await Self.events(survivor.base, "story")
            #expect(Self.settledEvents(events, id).map { $0["outcome"] } == ["completed"])
            #expect(events.contains { $0["type"] == "log" && ($0["message"]?.stringValue ?? "").contains("partial output") })
            #expect(events.map { $0["eventIndex"]?.intValue } == Array(0..<events.count).map(Optional.some))
        }
    }

    @Test func aToolCallKilledMidwayIsReportedInterruptedAndNeverRunAgain() async throws {
        try await Self.withCluster { cluster in
            try await cluster.startWorker()
            try await cluster.startWorker()
            await cluster.model.enqueue(.toolCall("side_effect", ["label": "charge-card", "sleepMs": 30000]))
            let entry = cluster.workers.withLock { $0[1] }
            let id = try await Self.prompt(entry.base, "billing", "Charge the card")
            let owner = try await cluster.owner(of: id)
            while cluster.sideEffects.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            try await Task.sleep(for: .milliseconds(200))
            let killed = await cluster.kill(owner)
            let record = try #require(try await cluster.awaitRecovery([id], killedAt: killed, label: "mid-tool").first)
            #expect(record.status == .completed, "\(String(describing: record.error))")
            #expect(cluster.sideEffects.count == 1, "the tool ran \(cluster.sideEffects.count) times: \(cluster.sideEffects)")

            let history = try await cluster.history("billing")
            let results = history.compactMap { if case .toolResult(let result) = $0 { result } else { nil } }
            #expect(results.count == 1)
            #expect(results.first?.isError == true && results.first?.content.contains("interrupted") == true)
            if case .assistant(let final)? = history.last { #expect(final.toolCalls.isEmpty) } else { Issue.record("no final answer") }
            let requests = await cluster.model.requests()
            #expect(requests.count == 2, "one model call before the kill, one after")
        }
    }

    @Test func aTaskThatFinishedBeforeAKillIsNeverRunAgain() async throws {
        try await Self.withCluster { cluster in
            try await cluster.startWorker()
            try await cluster.startWorker()
            // One turn delegates a task (whose subagent runs a side effect and answers) and starts
            // a slow side effect beside it; the process dies after the task finished.
            await cluster.model.enqueue(
                .toolCalls([
                    ScriptedToolCall(name: "task", arguments: ["agent": "helper", "prompt": "Send the invoice"]),
                    ScriptedToolCall(name: "side_effect", arguments: ["label": "slow", "sleepMs": 30000]),
                ]),
                .toolCall("side_effect", ["label": "in-task", "sleepMs": 0]),
                .text("invoice sent"),
                .text("All done."))
            let entry = cluster.workers.withLock { $0[0] }
            let id = try await Self.prompt(entry.base, "delegator", "Send the invoice and wait")
            let owner = try await cluster.owner(of: id)
            // Wait until the task's outcome is journaled.
            let deadline = ContinuousClock.now + .seconds(20)
            while try await cluster.stores.submissions.submission(id)?.journal?.tools
                .contains(where: { $0.toolName == "task" && $0.state == .finished }) != true
            {
                guard ContinuousClock.now < deadline else {
                    Issue.record("the task never finished")
                    return
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            let killed = await cluster.kill(owner)
            let record = try #require(try await cluster.awaitRecovery([id], killedAt: killed, label: "after a task").first)
            #expect(record.status == .completed, "\(String(describing: record.error))")
            #expect(record.result?["text"] == "All done.")
            #expect(
                cluster.sideEffects.map { $0.split(separator: " ").first.map(String.init) ?? "" }.sorted() == ["in-task", "slow"],
                "each side effect ran once: \(cluster.sideEffects)")

            let history = try await cluster.history("delegator")
            let results = history.compactMap { if case .toolResult(let result) = $0 { result } else { nil } }
            #expect(results.map(\.toolName) == ["task", "side_effect"])
            #expect(results.first?.content == "invoice sent" && results.first?.isError == false, "restored from the journal")
            #expect(results.last?.isError == true && results.last?.content.contains("interrupted") == true)
            let requests = await cluster.model.requests()
            #expect(requests.count == 4, "parent turn, two subagent turns, the parent's turn after recovery")
        }
    }

    @Test func aKillBetweenTurnsRepeatsOnlyTheModelRequest() async throws {
        try await Self.withCluster { cluster in
            try await cluster.startWorker()
            try await cluster.startWorker()
            await cluster.model.enqueue(
                .toolCall("side_effect", ["label": "send-email", "sleepMs": 0]),
                ScriptedReply(text: "too late", chunkDelayMs: 60_000))
            let entry = cluster.workers.withLock { $0[0] }
            let id = try await Self.prompt(entry.base, "mailer", "Send the email")
            let owner = try await cluster.owner(of: id)
            while await cluster.model.requests().count < 2 { try await Task.sleep(for: .milliseconds(20)) }
            try await Task.sleep(for: .milliseconds(200))
            let killed = await cluster.kill(owner)
            let record = try #require(try await cluster.awaitRecovery([id], killedAt: killed, label: "between turns").first)
            #expect(record.status == .completed, "\(String(describing: record.error))")
            #expect(cluster.sideEffects.count == 1)
            let requests = await cluster.model.requests()
            #expect(requests.count == 3)
            if requests.count == 3 {
                #expect(requests[2].body["messages"] == requests[1].body["messages"], "the repeated request has the same history")
            }
            let history = try await cluster.history("mailer")
            #expect(history.filter { if case .toolResult = $0 { true } else { false } }.count == 1)
        }
    }

    @Test func waitResultAndLiveReadersOnOneReplicaSeeASubmissionSettledByAnother() async throws {
        try await Self.withCluster { cluster in
            // Each process runs one submission at a time; the one busy with a long tool call cannot
            // claim the next prompt, so the other process must run it.
            try await cluster.startWorker(["AGENT_CONCURRENCY": "1"])
            try await cluster.startWorker(["AGENT_CONCURRENCY": "1"])
            await cluster.model.enqueue(.toolCall("side_effect", ["label": "blocker", "sleepMs": 6000]))
            let entry = cluster.workers.withLock { $0[0] }
            let blocker = try await Self.prompt(entry.base, "blocker", "Block")
            let busy = try await cluster.owner(of: blocker)
            while cluster.sideEffects.isEmpty { try await Task.sleep(for: .milliseconds(20)) }

            // A live reader on the busy process, connected before the prompt exists.
            let reader = Task { () -> String in
                var raw = ""
                let deadline = ContinuousClock.now + .seconds(30)
                while ContinuousClock.now < deadline {
                    let response = try await HTTPClient.shared.execute(
                        HTTPClientRequest(url: "\(busy.base)/agents/worker/elsewhere?offset=-1&live=sse"), timeout: .seconds(30))
                    guard response.status == .ok else {
                        try await Task.sleep(for: .milliseconds(20))  // 404 until the prompt is admitted
                        continue
                    }
                    for try await buffer in response.body {
                        raw += String(buffer: buffer)
                        if raw.contains("submission_settled") { return raw }
                    }
                }
                return raw
            }
            var request = HTTPClientRequest(url: "\(busy.base)/agents/worker/elsewhere?wait=result")
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: #"{"message":"Run me anywhere"}"#))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let body = try JSONValue(parsing: Data(try await response.body.collect(upTo: 1 << 16).readableBytesView))
            #expect(response.status == .ok, "\(body)")
            #expect(body["result"]?["text"] == "Echo: Run me anywhere")
            let id = try #require(body["submissionId"]?.stringValue)
            let record = try #require(try await cluster.stores.submissions.submission(id))
            #expect(record.owner != busy.owner, "settled by the other process")
            #expect(record.status == .completed)
            let raw = try await reader.value
            #expect(raw.contains("Echo: ") && raw.contains("\"submissionId\":\"\(id)\""), "the reader saw the events live")
            #expect(raw.contains("submission_settled"))
            _ = try await cluster.waitSettled([blocker])
        }
    }

    @Test func aHundredPromptsOverTenInstancesKeepTheirOrderThroughAKill() async throws {
        try await Self.withCluster { cluster in
            let a = try await cluster.startWorker()
            let b = try await cluster.startWorker()
            await cluster.model.state.enqueue(Array(repeating: ScriptedReply(text: "ok then fine", chunkDelayMs: 40), count: 100))
            let instances = (0..<10).map { "inst\($0)" }
            let ids = try await withThrowingTaskGroup(of: (String, String).self) { group in
                for instance in instances {
                    for index in 0..<10 {
                        group.addTask {
                            let id = try await Self.prompt(index % 2 == 0 ? a.base : b.base, instance, "\(instance) message \(index)")
                            return (instance, id)
                        }
                    }
                }
                var all: [(String, String)] = []
                for try await pair in group { all.append(pair) }
                return all
            }
            #expect(ids.count == 100)

            let client = PostgresClient(configuration: try DatabaseURL(cluster.databaseURL).clientConfiguration)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                // One query each, so the counts are taken in milliseconds: the lease is 2 s, and a
                // count that took longer (100 reads on a starved CI machine did) raced the survivor's
                // take-over and saw nothing stranded.
                func count(_ condition: PostgresQuery) async throws -> Int {
                    for try await value in try await client.query(condition).decode(Int.self) { return value }
                    return 0
                }
                let owner = a.owner
                // Kill one process while work is in flight on it: at least 20 settled, and `a` holding one.
                let deadline = ContinuousClock.now + .seconds(60)
                while true {
                    let settled = try await count("SELECT count(*)::bigint FROM flue_submissions WHERE settled_at IS NOT NULL")
                    let running = try await count(
                        "SELECT count(*)::bigint FROM flue_submissions WHERE status = 'running' AND owner = \(owner)")
                    if settled >= 20 && running > 0 { break }
                    guard ContinuousClock.now < deadline else { throw TestFailure() }
                    try await Task.sleep(for: .milliseconds(5))
                }
                let killed = await cluster.kill(a)
                let stranded = try await count(
                    "SELECT count(*)::bigint FROM flue_submissions WHERE status = 'running' AND owner = \(owner)")
                #expect(stranded > 0, "the killed process had a submission running")
                let records = try await cluster.awaitRecovery(ids.map(\.1), killedAt: killed, label: "100 prompts")
                #expect(records.allSatisfy { $0.status == .completed }, "\(records.filter { $0.status != .completed }.map(\.error))")

                for instance in instances {
                    var admitted: [String] = []
                    for try await id in try await client.query(
                        "SELECT submission_id FROM flue_submissions WHERE instance_id = \(instance) ORDER BY sequence"
                    ).decode(String.self) { admitted.append(id) }
                    #expect(admitted.count == 10)
                    // Processing order on the stream: first operation of each submission.
                    var processed: [String] = []
                    for event in try await Self.events(b.base, instance) where event["type"] == "operation_start" {
                        if let id = event["submissionId"]?.stringValue, !processed.contains(id) { processed.append(id) }
                    }
                    #expect(processed == admitted, "\(instance): processed \(processed) admitted \(admitted)")
                    // Each input entered the history exactly once, in admission order.
                    let inputs = try await cluster.history(instance).compactMap { message -> String? in
                        if case .user(let text, _) = message, text.hasPrefix(instance) { text } else { nil }
                    }
                    let expected = try await admitted.asyncMap { try await cluster.stores.submissions.submission($0)?.input["message"]?.stringValue ?? "" }
                    #expect(inputs == expected, "\(instance): history \(inputs)")
                }
                group.cancelAll()
            }
        }
    }
}

extension Sequence where Element: Sendable {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var mapped: [T] = []
        for element in self { mapped.append(try await transform(element)) }
        return mapped
    }
}
