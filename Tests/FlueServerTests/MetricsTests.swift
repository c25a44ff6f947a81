import FlueAuth
import FlueEngine
import FlueProviders
import FluePersistence
import FlueRuntime
import FlueServer
import FlueTestSupport
import Foundation
import Testing

/// `METRICS=prometheus` exposes the named series with the right values after known traffic (issue 15, item 2).
@Suite struct MetricsTests {
    /// The value of the series `name` whose labels include `labels`, from the text exposition.
    static func value(_ text: String, _ name: String, _ labels: [String: String] = [:]) -> Double? {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            let series = line[..<space]
            let seriesName = series.prefix { $0 != "{" }
            guard seriesName == name else { continue }
            let labelText = series.dropFirst(seriesName.count)
            guard labels.allSatisfy({ labelText.contains("\($0.key)=\"\($0.value)\"") }) else { continue }
            return Double(line[line.index(after: space)...])
        }
        return nil
    }

    @Test func knownTrafficShowsInTheSeries() async throws {
        let f = try await ServerFixture.start { $0.metrics = .prometheus }
        try await f.scoped {
            let registry = try #require(f.engine.models as? ProviderRegistry)
            registry.setPrice(CostAndObserveTests.price, for: try ModelSpecifier(parsing: "anthropic/claude-fake"))
            for _ in 0..<2 { #expect(try await f.post("/workflows/logs?wait=result", #"{"count":1}"#).status == 200) }
            #expect(try await f.post("/workflows/fails?wait=result", "{}").status == 500)
            #expect(try await f.post("/workflows/nope", "{}").status == 404)
            await f.model.enqueue(
                ScriptedReply(
                    toolCalls: [ScriptedToolCall(name: "finish", arguments: ["translation": "salut", "confidence": "high"])],
                    usage: CostAndObserveTests.scripted))
            #expect(try await f.post("/workflows/translate?wait=result", #"{"text":"hi","language":"fr"}"#).status == 200)
            await f.model.enqueue(ScriptedReply(text: "hello", usage: Usage(input: 10, output: 5)))
            #expect(try await f.post("/agents/assistant/m1?wait=result", #"{"message":"hi"}"#).status == 200)
            // A cancelled run, and a run a dead process left behind that this one ends.
            let cancelled = try await f.startRun("sleeps", #"{"ms":60000}"#)
            #expect(try await f.post("/runs/\(cancelled)/cancel", nil).status == 200)
            _ = try await f.readToEnd(cancelled)
            let orphan = FlueID.make("run")
            let longAgo = Date().addingTimeInterval(-3600)
            _ = try await f.engine.stores.runs.createRun(
                RunRecord(runId: orphan, workflowName: "logs", startedAt: longAgo, payload: ["count": 1], owner: "dead", heartbeatAt: longAgo))
            try await f.engine.stores.streams.createStream("runs/\(orphan)")
            #expect(await f.engine.recoverOrphanedRuns().contains(orphan))

            let scrape = try await f.get("/metrics")
            #expect(scrape.status == 200)
            #expect(scrape.header("content-type")?.hasPrefix("text/plain") == true)
            let text = scrape.text
            #expect(Self.value(text, "flue_workflow_runs_total", ["workflow": "logs", "outcome": "completed"]) == 2, "\(text)")
            #expect(Self.value(text, "flue_workflow_runs_total", ["workflow": "fails", "outcome": "errored"]) == 1)
            #expect(Self.value(text, "flue_workflow_runs_total", ["workflow": "translate", "outcome": "completed"]) == 1)
            #expect(Self.value(text, "flue_agent_submissions_total", ["agent": "assistant", "outcome": "completed"]) == 1)
            let model = ["gen_ai_provider_name": "anthropic", "gen_ai_request_model": "claude-fake"]
            // The translate turn (1000/200/4000/500) and the agent's (10/5).
            for (kind, tokens) in [("input", 1010.0), ("output", 205), ("cache_read", 4000), ("cache_write", 500)] {
                #expect(
                    Self.value(text, "gen_ai_client_token_usage_total", model.merging(["gen_ai_token_type": kind]) { $1 }) == tokens,
                    "\(kind) tokens counted")
            }
            let cost = try #require(Self.value(text, "flue_model_cost_usd_total", model))
            let agentTurn = CostAndObserveTests.price.cost(of: Usage(input: 10, output: 5)).total
            #expect(abs(cost - (CostAndObserveTests.expected.total + agentTurn)) < 1e-9, "cost: \(cost)")
            #expect(Self.value(text, "flue_workflow_runs_total", ["workflow": "sleeps", "outcome": "aborted"]) == 1)
            #expect(Self.value(text, "flue_workflow_runs_orphaned_total") == 1, "the engine's counters reach /metrics")
            #expect(Self.value(text, "gen_ai_client_operation_duration_seconds_count", model) == 2, "two model turns")
            #expect(Self.value(text, "flue_tool_calls_total", ["tool": "finish", "outcome": "ok"]) == 1)
            #expect(Self.value(text, "flue_workflow_runs_running") == 0)
            #expect(Self.value(text, "flue_agent_submissions_running") == 0)
            #expect(Self.value(text, "flue_agent_submissions_open", ["status": "queued"]) == 0)
            let route = ["http_route": "/workflows/{name}", "http_request_method": "POST"]
            #expect(Self.value(text, "http_server_requests_total", route.merging(["http_response_status_code": "200"]) { $1 }) == 3)
            #expect(Self.value(text, "http_server_requests_total", route.merging(["http_response_status_code": "202"]) { $1 }) == 1)
            #expect(Self.value(text, "http_server_requests_total", route.merging(["http_response_status_code": "500"]) { $1 }) == 1)
            #expect(Self.value(text, "http_server_requests_total", route.merging(["http_response_status_code": "404"]) { $1 }) == 1)
            #expect(Self.value(text, "http_server_request_duration_seconds_count", route) == 6)
            let agentRoute = ["http_route": "/agents/{name}/{id}", "http_request_method": "POST", "http_response_status_code": "200"]
            #expect(Self.value(text, "http_server_requests_total", agentRoute) == 1)
        }
    }

    @Test func metricsAreBehindTheAccessPolicy() async throws {
        let f = try await ServerFixture.start(access: subjectScopedAccess()) { $0.metrics = .prometheus }
        try await f.scoped {
            let anonymous = try await f.get("/metrics")
            #expect(anonymous.status == 401 && anonymous.errorType == "unauthorized", "\(anonymous.text)")
            let signedIn = try await f.get("/metrics", headers: alice)
            #expect(signedIn.status == 200 && signedIn.text.contains("http_server_requests_total"), "\(signedIn.text)")
        }
    }

    @Test func withoutMetricsThereIsNoRoute() async throws {
        let f = try await ServerFixture.start()
        try await f.scoped {
            let reply = try await f.get("/metrics")
            #expect(reply.status == 404)
        }
    }
}
