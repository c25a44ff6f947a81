import AsyncHTTPClient
import FlueRuntime
import FlueTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// A throwaway PostgreSQL cluster this test can stop and start (needs root, as in CI, and the
/// Debian postgresql binaries).
struct PrivatePostgres {
    let directory: String
    let port: Int
    let bin: String

    static func binDirectory() -> String? {
        let base = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
        return versions.compactMap(Int.init).sorted().last.map { "\(base)/\($0)/bin" }
    }

    static var available: Bool { geteuid() == 0 && binDirectory() != nil }

    /// Runs a shell command to completion. (`system`, not `Process`: Foundation's `waitUntilExit`
    /// can hang when the command leaves a daemon behind, as `pg_ctl start` does.)
    static func shell(_ command: String) throws {
        let status = system(command + " >/dev/null 2>&1")
        guard status == 0 else {
            throw FlueError(.invalidDefinition, "command failed (\(status)): \(command)")
        }
    }

    static func create() throws -> PrivatePostgres {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flue-pg-\(UUID().uuidString)").path
        let bin = try #require(binDirectory())
        let port = Int.random(in: 56000...59000)
        try shell("install -d -o postgres \(directory)")
        try shell("su postgres -c '\(bin)/initdb -D \(directory)/data -U postgres -A trust'")
        let cluster = PrivatePostgres(directory: directory, port: port, bin: bin)
        try cluster.start()
        return cluster
    }

    var url: String { "postgresql://postgres@127.0.0.1:\(port)/postgres?sslmode=disable" }

    func start() throws {
        try Self.shell(
            "su postgres -c \"\(bin)/pg_ctl -D \(directory)/data -w -l \(directory)/log -o '-p \(port) -k \(directory) -c listen_addresses=127.0.0.1' start\"")
    }

    func stop() throws {
        try Self.shell("su postgres -c '\(bin)/pg_ctl -D \(directory)/data -m immediate -w stop'")
    }

    func destroy() {
        try? stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

@Suite(.serialized, .enabled(if: PrivatePostgres.available, "needs root and the postgresql server binaries"))
struct DatabaseOutageTests {
    static func status(_ url: String, method: HTTPMethod = .GET, body: String? = nil) async throws -> (Int, String?) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let data = try await response.body.collect(upTo: 1 << 20)
        let json = try? JSONValue(parsing: Data(data.readableBytesView))
        return (Int(response.status.code), json?["error"]?["type"]?.stringValue)
    }

    @Test func anOutageAnswers503AndServiceRecoversWhenTheDatabaseReturns() async throws {
        let cluster = try PrivatePostgres.create()
        defer { cluster.destroy() }
        let model = try await FakeModelServer.start()
        try await model.scoped {
            let child = try ChildProcess(
                arguments: ["serve"], environment: ExampleProcessTests.environment(model, ["DATABASE_URL": cluster.url]))
            defer { child.signal(SIGKILL) }
            let port = try #require(await child.listeningPort(), "no listening line in: \(child.stderr)")
            let base = "http://127.0.0.1:\(port)"

            #expect(try await Self.status(base + "/runs/run_nope?meta") == (404, "run_not_found"))

            try cluster.stop()
            let down = try await Self.status(base + "/runs/run_nope?meta")
            #expect(down == (503, "store_unavailable"))
            let refused = try await Self.status(
                base + "/workflows/summarize", method: .POST, body: #"{"text":"hello"}"#)
            #expect(refused == (503, "store_unavailable"))
            #expect(child.isRunning)

            try cluster.start()
            var recovered = false
            for _ in 0..<100 {
                if try await Self.status(base + "/runs/run_nope?meta").0 == 404 {
                    recovered = true
                    break
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(recovered, "the server did not recover after the database came back")
            let admitted = try await Self.status(base + "/workflows/summarize", method: .POST, body: #"{"text":"hello"}"#)
            #expect(admitted.0 == 202)
            child.signal(SIGTERM)
            #expect(await child.waitForExit() == 0)
        }
    }
}
