/// Who may use a mounted ``FlueRoutes``, what each principal may touch, and how much.
///
/// With a policy every Flue route (the OpenAPI document included) first authenticates: no
/// credentials answer `401 unauthorized` with `WWW-Authenticate`; credentials that do not allow
/// the addressed run or agent instance answer the same `404` an unknown one gets
/// (`run_not_found`, or `stream_not_found` for the instance); a principal over its limits gets
/// `429 rate_limited` with `Retry-After`. Routes the application adds itself (`/health`) are not
/// affected.
///
/// ```swift
/// let access = AccessPolicy(
///     authenticator: BearerTokenAuthenticator(tokens: [ciToken: "ci"]),   // FlueAuth; ciToken from a secret store
///     ownership: .subjectScoped, limits: .init(requestsPerMinute: 600, concurrentSubmissions: 8))
/// FlueRoutes(server: server, access: access).register(on: router)
/// ```
public struct AccessPolicy: Sendable {
    public var authenticator: any RequestAuthenticator
    public var ownership: Ownership
    public var limits: PrincipalLimits

    public init(authenticator: any RequestAuthenticator, ownership: Ownership = .shared, limits: PrincipalLimits = .init()) {
        self.authenticator = authenticator
        self.ownership = ownership
        self.limits = limits
    }
}

/// What a request addresses, as ownership rules see it.
public enum ProtectedResource: Sendable, Hashable {
    /// `POST /workflows/:name`: starting a run.
    case workflow(name: String)
    /// A run's stream, record or cancel; `startedBy` is the subject that started it (`nil` for a
    /// run started from code or before access control was on).
    case run(workflow: String, runId: String, startedBy: String?)
    /// An agent instance: prompts, its stream, its submissions, approvals, cancel and abort.
    case agentInstance(agent: String, id: String)
    /// `GET /openapi.json`.
    case document
}

/// The rule mapping an authenticated principal to what it may touch. A denied resource is
/// answered like an unknown one, so a principal cannot learn what others have.
public struct Ownership: Sendable {
    /// `shared`, `subject` or `custom` (logged at start).
    public let name: String
    public let allows: @Sendable (Principal, ProtectedResource) async throws -> Bool

    public init(name: String = "custom", _ allows: @escaping @Sendable (Principal, ProtectedResource) async throws -> Bool) {
        self.name = name
        self.allows = allows
    }

    /// Every authenticated principal may touch everything (one team sharing a deployment).
    public static let shared = Ownership(name: "shared") { _, _ in true }

    /// Each principal owns the agent instances whose id is its subject or starts with its subject
    /// and `:` (`alice`, `alice:support`), and the runs it started. Any principal may start runs
    /// and read the OpenAPI document. Subjects must therefore be valid instance-id characters
    /// (letters, digits, `. _ ~ @ + -`) without `:` (else `alice` would own what `alice:bob`
    /// owns; such a subject owns no instance); for others, map them in a ``custom(_:)`` rule.
    public static let subjectScoped = Ownership(name: "subject") { principal, resource in
        switch resource {
        case .workflow, .document: true
        case .run(_, _, let startedBy): startedBy == principal.subject
        case .agentInstance(_, let id):
            !principal.subject.isEmpty && !principal.subject.contains(":")
                && (id == principal.subject || id.hasPrefix(principal.subject + ":"))
        }
    }

    /// An application's own rule.
    public static func custom(_ allows: @escaping @Sendable (Principal, ProtectedResource) async throws -> Bool) -> Ownership {
        Ownership(allows)
    }
}

/// Per-principal limits, kept by each replica in memory: with N replicas behind a balancer a
/// principal gets up to N times each figure (documented in `docs/server.md`). Values below 1
/// count as 1.
public struct PrincipalLimits: Sendable, Hashable {
    /// Requests per minute on Flue routes, as a token bucket that holds a minute's worth and
    /// refills continuously; `nil` is unlimited.
    public var requestsPerMinute: Int?
    /// Accepted work in progress: agent submissions and workflow runs admitted through this
    /// replica and not yet settled or ended (on any replica); `nil` is unlimited.
    public var concurrentSubmissions: Int?

    public init(requestsPerMinute: Int? = nil, concurrentSubmissions: Int? = nil) {
        self.requestsPerMinute = requestsPerMinute.map { max(1, $0) }
        self.concurrentSubmissions = concurrentSubmissions.map { max(1, $0) }
    }
}
