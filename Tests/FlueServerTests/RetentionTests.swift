import FluePersistence
@testable import FlueEngine
import FlueServer
import FlueTestSupport
import Foundation
import Testing

/// Old, finished work is removed by the engine's retention loop, and the routes say so (issue 15, item 6).
@Suite struct RetentionTests {
    @Test func theLoopRemovesEndedRunsAndSettledSubmissionsAndKeepsActiveWork() async throws {
        let f = try await ServerFixture.start {
            $0.engine.retention = RetentionPolicy(maxAge: .seconds(1), interval: .milliseconds(100))
        }
        try await f.scoped {
            let ended = try await f.post("/workflows/logs?wait=result", #"{"count":2}"#)
            #expect(ended.status == 200, "\(ended.text)")
            let endedId = try #require(ended.json?["runId"]?.stringValue)
            let active = try await f.startRun("gated")
            await f.model.enqueue(ScriptedReply(text: "Hello"))
            let prompt = try await f.post("/agents/assistant/retained?wait=result", #"{"message":"hi"}"#)
            #expect(prompt.status == 200, "\(prompt.text)")
            let submissionId = try #require(prompt.json?["submissionId"]?.stringValue)

            // The submission settled last; once it is gone, a pass has seen everything old.
            var gone = false
            for _ in 0..<200 where !gone {
                try await Task.sleep(for: .milliseconds(100))
                gone = try await f.get("/agents/assistant/retained/submissions/\(submissionId)").status == 404
            }
            #expect(gone, "the settled submission is removed once older than the maximum age")
            let meta = try await f.get("/runs/\(endedId)?meta")
            #expect(meta.status == 404 && meta.errorType == "run_not_found", "\(meta.text)")
            let read = try await f.get("/runs/\(endedId)?offset=-1")
            #expect(read.status == 404 && read.errorType == "run_not_found", "\(read.text)")
            let stream = try await f.get("/agents/assistant/retained?offset=-1")
            #expect(stream.status == 200 && stream.json?.arrayValue?.isEmpty == true, "the idle instance's events are removed")
            let tail = try #require(try await f.engine.stores.streams.meta("agents/assistant/retained")?.tail)
            #expect(tail.eventCount > 0, "the instance had events")
            #expect(stream.header("Stream-Next-Offset") == tail.description, "and a read continues at its tail")

            let running = try await f.get("/runs/\(active)?meta")
            #expect(running.status == 200 && running.json?["status"] == "active", "an active run is kept however old")
            f.gate.open()
            #expect(try await f.readToEnd(active).last?["type"] == "run_end")
        }
    }

    @Test func aCountBoundKeepsTheNewestRunsThroughTheEngine() async throws {
        let f = try await ServerFixture.start {
            $0.engine.retention = RetentionPolicy(maxAge: nil, maxRecords: 1, interval: .seconds(3600))
        }
        try await f.scoped {
            var runIds: [String] = []
            for _ in 0..<3 {
                let reply = try await f.post("/workflows/logs?wait=result", #"{"count":1}"#)
                runIds.append(try #require(reply.json?["runId"]?.stringValue))
            }
            let active = try await f.startRun("gated")
            // The loop passes every second under a count bound; a pass now makes it certain.
            try await f.engine.pruneOldWork()
            for (index, runId) in runIds.enumerated() {
                let status = try await f.get("/runs/\(runId)?meta").status
                #expect(status == (index == 2 ? 200 : 404), "run \(index) answered \(status)")
            }
            #expect(try await f.get("/runs/\(active)?meta").status == 200, "the active run does not count")
            f.gate.open()
            _ = try await f.readToEnd(active)
        }
    }

    @Test func keepEverythingRemovesNothing() async throws {
        let f = try await ServerFixture.start { $0.engine.retention = .keepEverything }
        try await f.scoped {
            let ended = try await f.post("/workflows/logs?wait=result", #"{"count":1}"#)
            let runId = try #require(ended.json?["runId"]?.stringValue)
            #expect(try await f.engine.pruneOldWork() == RetentionReport())
            #expect(try await f.get("/runs/\(runId)?meta").status == 200)
        }
    }
}
