import ArgumentParser
import AsyncHTTPClient
import FluePersistence
import FluePostgres
import FlueRuntime
import Foundation
import NIOCore
import PostgresNIO

/// Prompts agent instances through running servers and measures, from their shared Postgres,
/// how fast submissions settle; optionally kills one server with SIGKILL and measures how long
/// the submissions it owned take to be settled by the others.
struct AgentSubmissions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agents",
        abstract: "POSTs prompts to /agents/<agent>/<id> across servers; prints settlement figures as JSON.")

    @Option(help: "Comma-separated base URLs of the servers; prompts go round-robin.") var targets: String
    @Option var databaseURL: String
    @Option var agent = "assistant"
    @Option var instances = 32
    @Option(help: "Prompts per instance.") var perInstance = 10
    @Option(help: "Concurrent POSTs while admitting.") var concurrency = 64
    @Option(help: "SIGKILL this process id after --kill-after-ms.") var killPid: Int32?
    @Option(help: "The owner id of the process to kill (from its `owner=` log line).") var killOwner: String?
    @Option var killAfterMs = 1000
    @Option var timeoutSeconds = 300.0

    func run() async throws {
        let bases = targets.split(separator: ",").map(String.init)
        let client = PostgresClient(configuration: try DatabaseURL(databaseURL).clientConfiguration)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await measure(bases, client)
        }
    }

    private func measure(_ bases: [String], _ client: PostgresClient) async throws {
        let run = FlueID.make("bench").lowercased()
        let jobs = (0..<instances).flatMap { instance in (0..<perInstance).map { (instance, $0) } }
        let started = ContinuousClock.now
        var ids: [String] = []
        try await withThrowingTaskGroup(of: String.self) { group in
            var next = 0
            func add() {
                let (instance, index) = jobs[next]
                let base = bases[next % bases.count]
                next += 1
                group.addTask { try await Self.prompt(base, agent, "\(run)-\(instance)", "message \(index)") }
            }
            while next < min(concurrency, jobs.count) { add() }
            for try await id in group {
                ids.append(id)
                if next < jobs.count { add() }
            }
        }
        let admitted = ContinuousClock.now - started
        var result: [String: JSONValue] = [
            "submissions": .int(ids.count), "servers": .int(bases.count), "instances": .int(instances),
            "admitSeconds": .double(admitted.timeInterval.rounded(places: 3)),
        ]
        var killed: ContinuousClock.Instant?
        var stranded: [String] = []
        if let killPid {
            let wait = Duration.milliseconds(killAfterMs) - (ContinuousClock.now - started)
            if wait > .zero { try await Task.sleep(for: wait) }
            kill(killPid, SIGKILL)
            killed = .now
            try await Task.sleep(for: .milliseconds(100))
            if let killOwner {
                for try await id in try await client.query(
                    "SELECT submission_id FROM flue_submissions WHERE submission_id = ANY(\(ids)::text[]) AND status = 'running' AND owner = \(killOwner)"
                ).decode(String.self) { stranded.append(id) }
            }
            result["stranded"] = .int(stranded.count)
        }
        let deadline = ContinuousClock.now + .milliseconds(Int(timeoutSeconds * 1000))
        var strandedSettledAt: ContinuousClock.Instant?
        while true {
            let settled = try await count(client, ids)
            if strandedSettledAt == nil, try await count(client, stranded) == stranded.count { strandedSettledAt = .now }
            if settled == ids.count { break }
            guard ContinuousClock.now < deadline else { throw ValidationError("only \(settled) of \(ids.count) settled") }
            try await Task.sleep(for: .milliseconds(10))
        }
        let elapsed = ContinuousClock.now - started
        result["seconds"] = .double(elapsed.timeInterval.rounded(places: 3))
        result["submissionsPerSecond"] = .double((Double(ids.count) / elapsed.timeInterval).rounded(places: 1))
        if let killed, let strandedSettledAt {
            result["killToStrandedSettledMs"] = .int((strandedSettledAt - killed).wholeMilliseconds)
            result["killToAllSettledMs"] = .int((ContinuousClock.now - killed).wholeMilliseconds)
        }
        for try await (completed, failed, p50, p99) in try await client.query(
            """
            SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - accepted_at) * 1000),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - accepted_at) * 1000)
            FROM flue_submissions WHERE submission_id = ANY(\(ids)::text[])
            """
        ).decode((Int, Int, Double, Double).self) {
            result["completed"] = .int(completed)
            result["failed"] = .int(failed)
            result["admissionToSettledP50Ms"] = .double(p50.rounded(places: 1))
            result["admissionToSettledP99Ms"] = .double(p99.rounded(places: 1))
        }
        print(JSONValue.object(result).jsonString)
    }

    private func count(_ client: PostgresClient, _ ids: [String]) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        for try await count in try await client.query(
            "SELECT count(*) FROM flue_submissions WHERE submission_id = ANY(\(ids)::text[]) AND status IN ('completed', 'failed')"
        ).decode(Int.self) { return count }
        return 0
    }

    static func prompt(_ base: String, _ agent: String, _ instance: String, _ message: String) async throws -> String {
        var request = HTTPClientRequest(url: "\(base)/agents/\(agent)/\(instance)")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: JSONValue.object(["message": .string(message)]).jsonString))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try JSONValue(parsing: Data(try await response.body.collect(upTo: 1 << 16).readableBytesView))
        guard response.status == .accepted, let id = body["submissionId"]?.stringValue else {
            throw ValidationError("POST \(base) answered \(response.status.code): \(body.jsonString)")
        }
        return id
    }
}


extension Double {
    func rounded(places: Int) -> Double {
        let factor = Foundation.pow(10, Double(places))
        return (self * factor).rounded() / factor
    }
}
