import AsyncHTTPClient
import FlueAuth
import FlueRuntime
@testable import FlueServer
import FlueTestSupport
import JWTKit
import Foundation
import NIOHTTP1
import Testing

/// Two principals with static tokens, each owning its own instances and runs.
let aliceToken = "alice-token-0123456789abcdef"
let bobToken = "bob-token-0123456789abcdef00"
let alice = [("authorization", "Bearer \(aliceToken)")]
let bob = [("authorization", "Bearer \(bobToken)")]

func subjectScopedAccess(_ limits: PrincipalLimits = .init()) -> AccessPolicy {
    AccessPolicy(
        authenticator: BearerTokenAuthenticator(tokens: [aliceToken: "alice", bobToken: "bob"]),
        ownership: .subjectScoped, limits: limits)
}

/// Every Flue route of the mount, with a method and a path (ids need not exist: authentication
/// comes first).
let protectedRoutes: [(HTTPMethod, String, String?)] = [
    (.POST, "/workflows/logs", #"{"count":1}"#),
    (.GET, "/runs/run_x", nil),
    (.GET, "/runs/run_x?meta", nil),
    (.HEAD, "/runs/run_x", nil),
    (.POST, "/runs/run_x/cancel", nil),
    (.POST, "/agents/assistant/alice", #"{"message":"hi"}"#),
    (.GET, "/agents/assistant/alice?offset=-1", nil),
    (.HEAD, "/agents/assistant/alice", nil),
    (.POST, "/agents/assistant/alice/abort", nil),
    (.GET, "/agents/assistant/alice/submissions", nil),
    (.GET, "/agents/assistant/alice/submissions/sub_x", nil),
    (.POST, "/agents/assistant/alice/submissions/sub_x/cancel", nil),
    (.GET, "/agents/assistant/alice/approvals", nil),
    (.POST, "/agents/assistant/alice/approvals/call_x", #"{"decision":"approve"}"#),
    (.GET, "/openapi.json", nil),
    (.DELETE, "/workflows/logs", nil),
]

/// Authentication, ownership and per-principal limits on every route (issue 19).
@Suite(.serialized) struct AccessControlTests {
    @Test func everyRouteAnswers401WithAChallengeWithoutValidCredentialsAndHealthStaysPublic() async throws {
        let f = try await ServerFixture.start(access: subjectScopedAccess())
        try await f.scoped {
            for (method, path, body) in protectedRoutes {
                let none = try await f.request(method, path, body: body)
                #expect(none.status == 401, "\(method) \(path): \(none.status) \(none.text)")
                #expect(none.header("WWW-Authenticate") == #"Bearer realm="flue""#, "\(method) \(path)")
                if method != .HEAD {
                    #expect(none.errorType == "unauthorized", "\(method) \(path): \(none.text)")
                }
                let wrong = try await f.request(method, path, body: body, headers: [("authorization", "Bearer not-a-token")])
                #expect(wrong.status == 401, "\(method) \(path)")
                #expect(
                    wrong.header("WWW-Authenticate")
                        == #"Bearer realm="flue", error="invalid_token", error_description="The token is not valid.""#)
                // The scheme name is case-insensitive (RFC 9110 §11.1); other schemes are no credentials.
                let basic = try await f.request(method, path, body: body, headers: [("authorization", "Basic YWxpY2U6eA==")])
                #expect(basic.status == 401 && basic.header("WWW-Authenticate") == #"Bearer realm="flue""#)
                let lower = try await f.request(method, path, body: body, headers: [("authorization", "bearer \(aliceToken)")])
                #expect(lower.status != 401, "\(method) \(path): \(lower.status) \(lower.text)")
            }
            #expect(try await f.get("/health").status == 200, "the application's own routes are not protected")
            // The document says so: a bearer scheme required everywhere, 401 and 429 on every operation.
            let document = try #require(try await f.get("/openapi.json", headers: alice).json)
            #expect(document["components"]?["securitySchemes"]?["bearer"]?["scheme"] == "bearer")
            #expect(document["security"] == [["bearer": []]])
            var operations = 0
            for (path, item) in document["paths"]?.objectValue ?? [:] {
                for (method, operation) in item.objectValue ?? [:] {
                    operations += 1
                    #expect(operation["responses"]?["401"] != nil && operation["responses"]?["429"] != nil, "\(method) \(path)")
                }
            }
            #expect(operations >= 15)
            let runs = try await f.engine.stores.runs.listRuns(status: nil, workflowName: nil, limit: 10, cursor: nil)
            #expect(runs.runs.count == 1, "only the authenticated workflow POST started a run: \(runs.runs)")
        }
    }

    @Test(arguments: ReadAdapter.allCases)
    func aPrincipalCannotTouchAnotherPrincipalsRunsOrInstances(adapter: ReadAdapter) async throws {
        guard let (stores, close) = try await adapter.open() else { return }
        let f = try await ServerFixture.start(stores: stores, access: subjectScopedAccess())
        try await withTeardown {
            try await f.scoped {
                await f.model.enqueue(.text("hello alice"), .toolCall("guarded_work", ["label": "needs a human"]))
                // Alice's run and conversation.
                let run = try await f.post("/workflows/logs", #"{"count":2}"#, headers: alice + [("idempotency-key", "k1")])
                #expect(run.status == 202, "\(run.text)")
                let runId = try #require(run.json?["runId"]?.stringValue)
                _ = try await f.readToEnd(runId, headers: alice)
                let prompt = try await f.post(
                    "/agents/assistant/alice?wait=result", #"{"message":"hi"}"#, headers: alice)
                #expect(prompt.status == 200, "\(prompt.text)")
                let submissionId = try #require(prompt.json?["submissionId"]?.stringValue)
                let pending = try await f.post("/agents/assistant/alice:mail", #"{"message":"send it"}"#, headers: alice)
                #expect(pending.status == 202, "\(pending.text)")
                try await f.waitUntil("the call awaits approval") {
                    try await f.get("/agents/assistant/alice:mail/approvals", headers: alice).json?["approvals"]?.arrayValue?.isEmpty == false
                }
                let callId = try #require(
                    try await f.get("/agents/assistant/alice:mail/approvals", headers: alice)
                        .json?["approvals"]?.arrayValue?.first?["callId"]?.stringValue)

                // Alice sees her own; the record says who started the run.
                let meta = try await f.get("/runs/\(runId)?meta", headers: alice)
                #expect(meta.status == 200)
                #expect(meta.json?["startedBy"] == "alice")
                #expect(try await f.engine.stores.runs.getRun(runId)?.startedBy == "alice")
                #expect(try await f.get("/agents/assistant/alice/submissions/\(submissionId)", headers: alice).status == 200)

                // Bob gets exactly what an unknown run or instance gets.
                let hiddenRun: [(HTTPMethod, String, String?)] = [
                    (.GET, "/runs/\(runId)?offset=-1", nil), (.GET, "/runs/\(runId)?meta", nil), (.HEAD, "/runs/\(runId)", nil),
                    (.POST, "/runs/\(runId)/cancel", nil),
                ]
                for (method, path, body) in hiddenRun {
                    let reply = try await f.request(method, path, body: body, headers: bob)
                    let unknown = try await f.request(method, path.replacingOccurrences(of: runId, with: "run_unknown"), body: body, headers: bob)
                    #expect(reply.status == 404, "\(method) \(path): \(reply.text)")
                    #expect(reply.status == unknown.status && reply.errorType == unknown.errorType, "\(method) \(path)")
                }
                for instance in ["alice", "alice:mail"] {
                    let hiddenInstance: [(HTTPMethod, String, String?)] = [
                        (.POST, "/agents/assistant/\(instance)", #"{"message":"let me in"}"#),
                        (.GET, "/agents/assistant/\(instance)?offset=-1", nil),
                        (.HEAD, "/agents/assistant/\(instance)", nil),
                        (.POST, "/agents/assistant/\(instance)/abort", nil),
                        (.GET, "/agents/assistant/\(instance)/submissions", nil),
                        (.GET, "/agents/assistant/\(instance)/submissions/\(submissionId)", nil),
                        (.POST, "/agents/assistant/\(instance)/submissions/\(submissionId)/cancel", nil),
                        (.GET, "/agents/assistant/\(instance)/approvals", nil),
                        (.POST, "/agents/assistant/\(instance)/approvals/\(callId)", #"{"decision":"approve"}"#),
                    ]
                    for (method, path, body) in hiddenInstance {
                        let reply = try await f.request(method, path, body: body, headers: bob)
                        #expect(reply.status == 404, "\(method) \(path): \(reply.text)")
                        if method != .HEAD {
                            #expect(reply.errorType == "stream_not_found", "\(method) \(path): \(reply.text)")
                        }
                        if method == .GET {
                            // A read answers exactly as for an instance that never existed.
                            let unknown = try await f.request(method, path.replacingOccurrences(of: "/\(instance)", with: "/alice:never"), headers: alice)
                            if path.hasSuffix("offset=-1") {
                                #expect(reply.json?["error"]?["details"] == unknown.json?["error"]?["details"], "\(path)")
                            }
                        } else if method == .POST {
                            #expect(reply.json?["error"]?["details"] == "These credentials may not use this instance id.")
                        }
                    }
                }
                // Nothing Bob did reached Alice's work: the approval still waits, her history is hers.
                let approvals = try await f.get("/agents/assistant/alice:mail/approvals", headers: alice)
                #expect(approvals.json?["approvals"]?.arrayValue?.count == 1, "\(approvals.text)")
                #expect(f.ledger.calls.isEmpty, "the gated tool never ran")
                let history = try await f.engine.stores.submissions.submissions(
                    agent: "assistant", instanceId: "alice", before: nil, limit: 10)
                #expect(history.count == 1, "bob's prompt was never admitted: \(history)")

                // Bob's own instances and runs work; the same idempotency key names another run.
                let own = try await f.post("/agents/assistant/bob:chat", #"{"message":"mine"}"#, headers: bob)
                #expect(own.status == 202, "\(own.text)")
                let bobRun = try await f.post("/workflows/logs", #"{"count":2}"#, headers: bob + [("idempotency-key", "k1")])
                #expect(bobRun.status == 202, "\(bobRun.text)")
                #expect(bobRun.json?["runId"] != run.json?["runId"], "idempotency keys are scoped per principal")
                let replay = try await f.post("/workflows/logs", #"{"count":2}"#, headers: alice + [("idempotency-key", "k1")])
                #expect(replay.json?["runId"]?.stringValue == runId, "alice's retry still finds her run")

                // Alice decides her approval; the submission finishes.
                await f.model.enqueue(.text("sent"))
                let decided = try await f.post("/agents/assistant/alice:mail/approvals/\(callId)", #"{"decision":"approve"}"#, headers: alice)
                #expect(decided.status == 200, "\(decided.text)")
            }
        } teardown: {
            await close()
        }
    }

    @Test func aPrincipalOverItsRequestBudgetGets429WithRetryAfterAndOthersDoNot() async throws {
        let f = try await ServerFixture.start(access: subjectScopedAccess(.init(requestsPerMinute: 3)))
        try await f.scoped {
            for _ in 0..<3 {
                #expect(try await f.get("/openapi.json", headers: alice).status == 200)
            }
            let limited = try await f.get("/openapi.json", headers: alice)
            #expect(limited.status == 429, "\(limited.text)")
            #expect(limited.errorType == "rate_limited")
            #expect(limited.json?["error"]?["meta"]?["limit"] == "requests_per_minute")
            #expect(limited.json?["error"]?["meta"]?["max"] == 3)
            let retryAfter = try #require(limited.header("Retry-After").flatMap { Int($0) })
            #expect((1...20).contains(retryAfter), "a token comes back every 20 s: \(retryAfter)")
            // Every route counts, and the limit is per principal.
            for (method, path, body) in protectedRoutes {
                let reply = try await f.request(method, path, body: body, headers: alice)
                #expect(reply.status == 429 && reply.header("Retry-After") != nil, "\(method) \(path): \(reply.status)")
            }
            #expect(try await f.get("/openapi.json", headers: bob).status == 200)
            #expect(try await f.get("/health").status == 200)
        }
    }

    @Test func aPrincipalAtItsConcurrentSubmissionLimitGets429UntilOneSettles() async throws {
        let f = try await ServerFixture.start(access: subjectScopedAccess(.init(concurrentSubmissions: 2)))
        try await f.scoped {
            await f.model.enqueue(slowReply, slowReply)
            let first = try await f.post("/agents/assistant/alice", #"{"message":"one"}"#, headers: alice)
            let second = try await f.post(
                "/agents/assistant/alice:b", #"{"message":"two"}"#, headers: alice + [("idempotency-key", "retry-1")])
            #expect(first.status == 202 && second.status == 202)
            // A retry of an admitted prompt admits nothing new: the limit lets it through to its receipt.
            let retry = try await f.post(
                "/agents/assistant/alice:b", #"{"message":"two"}"#, headers: alice + [("idempotency-key", "retry-1")])
            #expect(retry.status == 202 && retry.json?["submissionId"] == second.json?["submissionId"], "\(retry.text)")
            let keyed = try await f.post(
                "/agents/assistant/alice:b", #"{"message":"two more"}"#, headers: alice + [("idempotency-key", "retry-2")])
            #expect(keyed.status == 429, "a new keyed prompt at the limit is refused: \(keyed.text)")
            let third = try await f.post("/agents/assistant/alice:c", #"{"message":"three"}"#, headers: alice)
            #expect(third.status == 429, "\(third.text)")
            #expect(third.json?["error"]?["meta"]?["limit"] == "concurrent_submissions")
            #expect(third.header("Retry-After") == "1")
            #expect(
                try await f.engine.stores.submissions.submissions(agent: "assistant", instanceId: "alice:c", before: nil, limit: 5)
                    .isEmpty, "a refused prompt is not admitted")
            // Bob is not held back by Alice's work.
            await f.model.enqueue(.text("bob's answer"))
            #expect(try await f.post("/agents/assistant/bob", #"{"message":"bob"}"#, headers: bob).status == 202)

            // Once one settles (cancelled here), Alice may submit again.
            let firstId = try #require(first.json?["submissionId"]?.stringValue)
            let cancel = try await f.post("/agents/assistant/alice/submissions/\(firstId)/cancel", nil, headers: alice)
            #expect(cancel.status == 200, "\(cancel.text)")
            await f.model.enqueue(.text("three done"))
            let again = try await f.post("/agents/assistant/alice:c", #"{"message":"three"}"#, headers: alice)
            #expect(again.status == 202, "\(again.text)")
            _ = try await f.post("/agents/assistant/alice/abort", nil, headers: alice)
            _ = try await f.post("/agents/assistant/alice:b/abort", nil, headers: alice)
        }
    }

    @Test func theEnvironmentConfiguresTokensJWTOwnershipAndLimitsAndRefusesWeakSettings() async throws {
        #expect(try await AccessPolicy.fromEnvironment([:]) == nil, "nothing configured: routes open")
        let tokens = try #require(try await AccessPolicy.fromEnvironment(["API_TOKENS": "\(aliceToken), \(bobToken)"]))
        #expect(tokens.authenticator is BearerTokenAuthenticator)
        #expect(try await tokens.ownership.allows(Principal(subject: "api"), .agentInstance(agent: "a", id: "anyone")))
        let jwt = try #require(
            try await AccessPolicy.fromEnvironment([
                "JWT_SECRET": String(repeating: "s", count: 32), "RATE_LIMIT_PER_MINUTE": "60",
                "MAX_CONCURRENT_SUBMISSIONS": "4",
            ]))
        #expect(jwt.limits == PrincipalLimits(requestsPerMinute: 60, concurrentSubmissions: 4))
        #expect(!(try await jwt.ownership.allows(Principal(subject: "alice"), .agentInstance(agent: "a", id: "bob"))))
        #expect(try await jwt.ownership.allows(Principal(subject: "alice"), .agentInstance(agent: "a", id: "alice:x")))
        #expect(!(try await jwt.ownership.allows(Principal(subject: "alice"), .agentInstance(agent: "a", id: "alicex"))))
        #expect(
            !(try await jwt.ownership.allows(Principal(subject: "alice:bob"), .agentInstance(agent: "a", id: "alice:bob"))),
            "a subject with ':' owns no instance: 'alice' would own the same ones")
        // A secret pasted with its newline still works; both kinds of credential together are routed by shape.
        let both = try #require(
            try await AccessPolicy.fromEnvironment([
                "API_TOKENS": aliceToken, "JWT_SECRET": String(repeating: "s", count: 32) + "\n",
            ]))
        #expect(both.authenticator is TokenOrJWTAuthenticator)
        let refused: [([String: String], String)] = [
            (["API_TOKENS": "short"], "API_TOKENS"),
            (["API_TOKENS": " "], "API_TOKENS"),
            (["API_TOKENS": ""], "API_TOKENS"),
            (["JWT_SECRET": "\n"], "JWT_SECRET"),
            (["JWT_JWKS_URL": ""], "JWT_JWKS_URL"),
            (["API_TOKENS": " , "], "API_TOKENS"),
            (["JWT_SECRET": "too short"], "JWT_SECRET"),
            (["JWT_SECRET": String(repeating: "s", count: 32), "JWT_JWKS_URL": "https://x/jwks"], "JWT_SECRET"),
            (["JWT_JWKS_URL": "https://idp.example/jwks"], "JWT_ISSUER"),
            (["JWT_JWKS_URL": "https://idp.example/jwks", "JWT_ISSUER": "https://idp.example"], "JWT_AUDIENCE"),
            (["JWT_JWKS_URL": "http://idp.example/jwks", "JWT_ISSUER": "i", "JWT_AUDIENCE": "a"], "JWT_JWKS_URL"),
            (["JWT_JWKS_URL": "not a url", "JWT_ISSUER": "i", "JWT_AUDIENCE": "a"], "JWT_JWKS_URL"),
            (["JWT_AUDIENCE": "api"], "JWT_AUDIENCE"),
            (["API_TOKENS": aliceToken, "OWNERSHIP": "everyone"], "OWNERSHIP"),
            (["API_TOKENS": aliceToken, "RATE_LIMIT_PER_MINUTE": "0"], "RATE_LIMIT_PER_MINUTE"),
            (["API_TOKENS": aliceToken, "MAX_CONCURRENT_SUBMISSIONS": "99999999999999999999"], "MAX_CONCURRENT_SUBMISSIONS"),
            (["RATE_LIMIT_PER_MINUTE": "10"], "RATE_LIMIT_PER_MINUTE"),
        ]
        for (environment, variable) in refused {
            do {
                _ = try await AccessPolicy.fromEnvironment(environment)
                Issue.record("\(environment) was accepted")
            } catch let error as ConfigurationError {
                #expect(error.variable == variable, "\(environment): \(error)")
            }
        }
    }
}

extension AccessControlTests {
    @Test func staticTokensAndJWTsTogetherEachGetTheirOwnReasonsAndJWTsCannotTakeATokenSubject() async throws {
        let secret = String(repeating: "j", count: 40)
        let authenticator = TokenOrJWTAuthenticator(
            tokens: BearerTokenAuthenticator(tokens: [aliceToken]), jwt: await JWTAuthenticator(hmacSecret: secret))
        let signer = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        let f = try await ServerFixture.start(access: AccessPolicy(authenticator: authenticator, ownership: .subjectScoped))
        try await f.scoped {
            func reply(_ token: String) async throws -> ServerFixture.Reply {
                try await f.get("/openapi.json", headers: [("authorization", "Bearer \(token)")])
            }
            #expect(try await reply(aliceToken).status == 200)
            #expect(try await reply(try await signer.sign(TestClaims(sub: "erin", iss: nil, aud: nil))).status == 200)
            let wrongToken = try await reply("not-one-of-the-tokens-at-all")
            #expect(wrongToken.status == 401 && wrongToken.json?["error"]?["details"] == "The token is not valid.")
            let expired = try await reply(try await signer.sign(TestClaims(sub: "erin", expiresIn: -3600)))
            #expect(expired.status == 401 && expired.json?["error"]?["details"] == "The token has expired.")
            let impostor = try await reply(try await signer.sign(TestClaims(sub: "api")))
            #expect(impostor.status == 401 && impostor.json?["error"]?["details"] == "The token's subject is reserved for static tokens.")
        }
    }

    @Test func theConcurrentLimitCountsWorkflowRunsToo() async throws {
        let f = try await ServerFixture.start(access: subjectScopedAccess(.init(concurrentSubmissions: 1)))
        try await f.scoped {
            let run = try await f.post("/workflows/gated", "{}", headers: alice)
            #expect(run.status == 202, "\(run.text)")
            let prompt = try await f.post("/agents/assistant/alice", #"{"message":"hi"}"#, headers: alice)
            #expect(prompt.status == 429 && prompt.json?["error"]?["meta"]?["limit"] == "concurrent_submissions", "\(prompt.text)")
            #expect(try await f.post("/workflows/logs", #"{"count":1}"#, headers: alice).status == 429)
            f.gate.open()
            let runId = try #require(run.json?["runId"]?.stringValue)
            _ = try await f.readToEnd(runId, headers: alice)
            await f.model.enqueue(.text("now"))
            #expect(try await f.post("/agents/assistant/alice", #"{"message":"hi"}"#, headers: alice).status == 202)
        }
    }

    @Test func aCustomRuleDecidesAndHiddenWorkflowsAreNotListed() async throws {
        let access = AccessPolicy(
            authenticator: BearerTokenAuthenticator(tokens: [aliceToken: "alice", bobToken: "bob"]),
            ownership: .custom { principal, resource in
                if case .workflow(let name) = resource { return name != "logs" || principal.subject == "alice" }
                return true
            })
        // Development mode, where the 404 lists the workflows the caller could start.
        let f = try await ServerFixture.start(access: access) { $0.developmentMode = true }
        try await f.scoped {
            #expect(try await f.post("/workflows/logs", #"{"count":1}"#, headers: alice).status == 202)
            let hidden = try await f.post("/workflows/logs", #"{"count":1}"#, headers: bob)
            #expect(hidden.status == 404 && hidden.errorType == "workflow_not_found", "\(hidden.text)")
            let listed = try #require(hidden.json?["error"]?["dev"]?.stringValue)
            #expect(listed.contains("translate") && !listed.contains("logs"), "the hidden workflow is not listed: \(listed)")
            let unknown = try await f.post("/workflows/nope", "{}", headers: alice)
            #expect(unknown.json?["error"]?["dev"]?.stringValue?.contains("logs") == true, "alice may start it: \(unknown.text)")
        }
    }

    @Test func credentialsInTheEnvironmentWithOpenRoutesRefuseToStart() async throws {
        let open = try await ServerFixture.start()
        let closed = try await ServerFixture.start(access: subjectScopedAccess())
        try await withTeardown {
            #expect(open.server.refusalOfOpenRoutes(["API_TOKENS": aliceToken])?.variable == "API_TOKENS")
            #expect(open.server.refusalOfOpenRoutes(["JWT_JWKS_URL": "https://idp/jwks"])?.variable == "JWT_JWKS_URL")
            #expect(open.server.refusalOfOpenRoutes(["API_TOKENS": ""]) == nil)
            #expect(open.server.refusalOfOpenRoutes([:]) == nil)
            #expect(closed.server.refusalOfOpenRoutes(["API_TOKENS": aliceToken]) == nil)
        } teardown: {
            await open.stop()
            await closed.stop()
        }
    }
}

extension AccessControlTests {
    @Test func theLimiterStaysBoundedAndNeverTrapsOnExtremeLimits() async throws {
        let limiter = PrincipalLimiter(PrincipalLimits(requestsPerMinute: 1, concurrentSubmissions: 1))
        #expect(PrincipalLimits(requestsPerMinute: 0, concurrentSubmissions: -5) == PrincipalLimits(requestsPerMinute: 1, concurrentSubmissions: 1))
        for index in 0..<(PrincipalLimiter.maxTrackedSubjects * 2) {
            try limiter.admitRequest("subject-\(index)")
            let reservation = try #require(try await limiter.reserveSubmission("subject-\(index)") { _ in false })
            limiter.commit(reservation, id: "sub_\(index)")
        }
        let tracked = limiter.trackedSubjects
        #expect(tracked.buckets <= PrincipalLimiter.maxTrackedSubjects + 1, "\(tracked)")
        #expect(tracked.inFlight <= PrincipalLimiter.maxTrackedSubjects + 1, "\(tracked)")
        // One request a minute: the second waits the whole minute (rounded up), never less than a second.
        let now = ContinuousClock.now
        try limiter.admitRequest("carol", now: now)
        do {
            try limiter.admitRequest("carol", now: now)
            Issue.record("a second request within the minute was admitted")
        } catch let error as FlueHTTPError {
            #expect(error.status == .tooManyRequests && error.retryAfter == 60)
        }
        try limiter.admitRequest("carol", now: now + .seconds(61))
        // A refused admission gives its place back.
        let huge = PrincipalLimiter(PrincipalLimits(requestsPerMinute: Int.max, concurrentSubmissions: Int.max))
        try huge.admitRequest("dave")
        let place = try #require(try await huge.reserveSubmission("dave") { _ in false })
        huge.release(place)
        #expect(huge.inFlightCount("dave") == 0)
    }
}
