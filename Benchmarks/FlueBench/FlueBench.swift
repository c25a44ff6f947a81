import ArgumentParser
import FluePersistence
import FluePostgres
import FlueRuntime
import Foundation

/// Benchmarks against a real Postgres: append throughput, cross-process delivery latency, and
/// agent submissions end to end through running servers.
@main
struct FlueBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flue-bench",
        abstract: "Flue persistence benchmarks (Postgres).",
        subcommands: [Append.self, LatencyWriter.self, LatencyReader.self, AgentSubmissions.self, WorkflowRuns.self])
}

/// A realistic event body (~220 bytes), like a `text_delta` with correlation ids.
func eventBody(_ index: Int, sentAt: Double? = nil) -> Data {
    var object: [String: JSONValue] = [
        "v": 1, "type": "text_delta", "eventIndex": .int(index), "timestamp": "2026-11-25T14:00:00.000Z",
        "runId": "run_01BENCHMARK0000000000000000", "operationId": "op_01BENCHMARK000000000000000",
        "turnId": "turn_01BENCHMARK00000000000000", "delta": "Lorem ipsum dolor sit amet ",
    ]
    if let sentAt { object["sentAt"] = .double(sentAt) }
    return JSONValue.object(object).jsonData()
}

struct Append: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Concurrent appends for a fixed time; prints events/s as JSON.")

    @Option var databaseURL: String
    @Option(help: "Concurrent clients.") var clients = 32
    @Option(help: "Streams the clients spread over (1 = all on one stream).") var streams = 1
    @Option(help: "Seconds to run.") var seconds = 10.0

    func run() async throws {
        let persistence = try PostgresPersistence(url: databaseURL)
        try await persistence.migrate()
        let stores = try await persistence.connect()
        let prefix = FlueID.make("bench")
        let paths = (0..<streams).map { "runs/\(prefix)_\($0)" }
        for path in paths { try await stores.streams.createStream(path) }
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let started = ContinuousClock.now
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for client in 0..<clients {
                group.addTask {
                    let path = paths[client % paths.count]
                    var count = 0
                    while ContinuousClock.now < deadline {
                        try await stores.streams.append(path, eventBody(count))
                        count += 1
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = ContinuousClock.now - started
        let secondsElapsed = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        var verified = 0
        for path in paths { verified += Int((try await stores.streams.meta(path)?.tail.sequence ?? -1) + 1) }
        try await persistence.close()
        let result: JSONValue = [
            "clients": .int(clients), "streams": .int(streams), "events": .int(total), "stored": .int(verified),
            "seconds": .double(secondsElapsed), "eventsPerSecond": .double((Double(total) / secondsElapsed).rounded()),
        ]
        print(result.jsonString)
    }
}

struct LatencyWriter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency-writer", abstract: "Appends timestamped events to one stream at a fixed rate.")

    @Option var databaseURL: String
    @Option var path: String
    @Option var count = 1000
    @Option(help: "Events per second.") var rate = 200.0

    func run() async throws {
        let persistence = try PostgresPersistence(url: databaseURL)
        try await persistence.migrate()
        let stores = try await persistence.connect()
        try await stores.streams.createStream(path)
        let interval = Duration.milliseconds(Int(1000 / rate))
        for index in 0..<count {
            try await stores.streams.append(path, eventBody(index, sentAt: Date().timeIntervalSince1970))
            try await Task.sleep(for: interval)
        }
        try await stores.streams.closeStream(path)
        try await persistence.close()
    }
}

struct LatencyReader: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency-reader",
        abstract: "Follows one stream live (woken by LISTEN/NOTIFY) until it closes; prints delivery latency percentiles.")

    @Option var databaseURL: String
    @Option var path: String

    func run() async throws {
        let persistence = try PostgresPersistence(url: databaseURL)
        try await persistence.migrate()
        let stores = try await persistence.connect()
        let changes = stores.streams.subscribe(path)
        var offset = StreamOffset.start
        var latencies: [Double] = []
        FileHandle.standardOutput.write(Data("ready\n".utf8))
        reading: for await _ in changes {
            while true {
                let result = try await stores.streams.read(path, after: offset, limit: 100)
                let now = Date().timeIntervalSince1970
                for event in result.events {
                    if let sent = (try? JSONValue(parsing: event.data))?["sentAt"], case .double(let at) = sent {
                        latencies.append((now - at) * 1000)
                    }
                }
                offset = result.nextOffset
                if result.closed && result.upToDate { break reading }
                if result.upToDate { break }
            }
        }
        try await persistence.close()
        latencies.sort()
        func percentile(_ p: Double) -> Double {
            guard !latencies.isEmpty else { return .nan }
            return latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]
        }
        let result: JSONValue = [
            "events": .int(latencies.count), "p50Ms": .double((percentile(0.5) * 100).rounded() / 100),
            "p99Ms": .double((percentile(0.99) * 100).rounded() / 100),
            "maxMs": .double(((latencies.last ?? .nan) * 100).rounded() / 100),
        ]
        print(result.jsonString)
    }
}
