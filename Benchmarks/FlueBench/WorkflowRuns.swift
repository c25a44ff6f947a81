import ArgumentParser
import AsyncHTTPClient
import FlueRuntime
import Foundation
import NIOCore
import Synchronization

/// Workflow runs through a running server: `POST /workflows/:name?wait=result` from concurrent
/// connections until `runs` have completed; prints runs/s and failures as one JSON line.
struct WorkflowRuns: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workflow-runs", abstract: "Completes a number of workflow runs through a server; prints runs/s as JSON.")

    @Option(help: "The server's base URL.") var url: String
    @Option(help: "The workflow to run.") var workflow = "summarize"
    @Option(help: "The JSON payload of every run.") var payload = #"{"text":"A short text to summarize."}"#
    @Option(help: "Runs to complete.") var runs = 1000
    @Option(help: "Concurrent connections.") var connections = 8

    func run() async throws {
        let target = "\(url)/workflows/\(workflow)?wait=result"
        let body = payload
        let counter = RunCounter(total: runs)
        let started = ContinuousClock.now
        let failures = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<max(1, connections) {
                group.addTask {
                    var failed = 0
                    while counter.take() {
                        var request = HTTPClientRequest(url: target)
                        request.method = .POST
                        request.headers.add(name: "content-type", value: "application/json")
                        request.body = .bytes(ByteBuffer(string: body))
                        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        if response.status != .ok { failed += 1 }
                    }
                    return failed
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let report: JSONValue = [
            "runs": .int(runs), "failed": .int(failures), "seconds": .double(seconds.rounded(places: 2)),
            "runsPerSecond": .double((Double(runs) / seconds).rounded(places: 1)),
        ]
        print(report.jsonString)
    }
}

/// Hands out run slots until `total` were taken.
final class RunCounter: Sendable {
    private let taken: Mutex<Int> = Mutex(0)
    private let total: Int
    init(total: Int) { self.total = total }
    func take() -> Bool {
        taken.withLock { taken in
            guard taken < total else { return false }
            taken += 1
            return true
        }
    }
}
