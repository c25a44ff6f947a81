import CoreMetrics

/// How the engine runs work: leases, heartbeats, recovery, concurrency and shutdown. `FlueServer`
/// reads these from the environment (`RUN_LEASE_SECONDS`, `RECOVERY_SCAN_SECONDS`,
/// `SUBMISSION_LEASE_SECONDS`, `AGENT_CONCURRENCY`, `APPROVAL_TIMEOUT_SECONDS`; see docs/server.md).
public struct EngineConfiguration: Sendable {
    /// How long shutdown waits for running workflows, and for agent submissions to reach a turn
    /// boundary, before cancelling them.
    public var shutdownGracePeriod: Duration
    /// A run whose owner has not sent a heartbeat for this long is considered orphaned.
    public var runLease: Duration
    /// How often the owner renews its runs' heartbeats.
    public var runHeartbeatInterval: Duration
    /// How often orphaned runs and expired submission leases are looked for (also once at start).
    public var recoveryScanInterval: Duration
    /// How long a running agent submission stays claimed without a renewal.
    public var submissionLease: Duration
    /// How often the owner renews its submission leases.
    public var submissionLeaseRenewal: Duration
    /// Agent submissions this process runs at once (one per instance session at most).
    public var agentConcurrency: Int
    /// Attempts (the first included) before a submission fails as exhausted.
    public var submissionMaxAttempts: Int
    /// How long after its first start a submission may still begin a model turn.
    public var submissionTimeout: Duration
    /// How often streamed model output is saved as a stream-chunk segment.
    public var streamChunkInterval: Duration
    /// How often the claim loop looks for queued work admitted by other processes.
    public var claimPollInterval: Duration
    /// How long a tool call waits for a human decision before it is denied as expired.
    public var approvalTimeout: Duration
    /// What old, finished work is removed, and how often (``RetentionPolicy``).
    public var retention: RetentionPolicy = RetentionPolicy()
    /// Where the engine's own counters go (submission recoveries, orphaned runs): `nil` uses
    /// swift-metrics' global `MetricsSystem.factory`. `FlueServer` sets its Prometheus factory.
    public var metricsFactory: (any MetricsFactory)?

    public init(
        shutdownGracePeriod: Duration = .seconds(30), runLease: Duration = .seconds(30),
        runHeartbeatInterval: Duration = .seconds(10), recoveryScanInterval: Duration = .seconds(5),
        submissionLease: Duration = .seconds(30), submissionLeaseRenewal: Duration = .seconds(10),
        agentConcurrency: Int = 32, submissionMaxAttempts: Int = 10, submissionTimeout: Duration = .seconds(3600),
        streamChunkInterval: Duration = .milliseconds(500), claimPollInterval: Duration = .seconds(1),
        approvalTimeout: Duration = .seconds(86_400)
    ) {
        self.approvalTimeout = approvalTimeout
        self.shutdownGracePeriod = shutdownGracePeriod
        self.runLease = runLease
        self.runHeartbeatInterval = runHeartbeatInterval
        self.recoveryScanInterval = recoveryScanInterval
        self.submissionLease = submissionLease
        self.submissionLeaseRenewal = submissionLeaseRenewal
        self.agentConcurrency = agentConcurrency
        self.submissionMaxAttempts = submissionMaxAttempts
        self.submissionTimeout = submissionTimeout
        self.streamChunkInterval = streamChunkInterval
        self.claimPollInterval = claimPollInterval
    }
}

/// What the engine's retention loop removes: ended runs with their streams, settled submissions
/// with their journals, and the events of idle agent instances, once older than ``maxAge`` or
/// beyond ``maxRecords``. Active runs and unsettled submissions are never removed. A removed run
/// answers `404 run_not_found`; a removed submission `404`, and its idempotency key admits anew.
/// Conversations (session snapshots) are kept. `FlueServer` reads `RETENTION_MAX_AGE_HOURS`,
/// `RETENTION_MAX_RECORDS` and `RETENTION_INTERVAL_SECONDS` (docs/observability.md, "Retention").
public struct RetentionPolicy: Sendable, Hashable {
    /// Finished work older than this is removed; `nil` keeps it however old. Default 7 days.
    public var maxAge: Duration?
    /// Ended runs and settled submissions beyond this many (each, newest kept) are removed however
    /// recent; `0` sets no count bound; `nil` uses the store's default (1,000 for the in-memory
    /// store, none on disk).
    public var maxRecords: Int?
    /// Time between passes (a pass repeats at once while it removes a full batch). Default 60 s;
    /// with a count bound (``maxRecords``, or the in-memory store's) at most
    /// ``countBoundInterval``.
    public var interval: Duration
    /// The most of each kind one pass removes.
    public var batchLimit: Int

    public init(
        maxAge: Duration? = .seconds(7 * 86_400), maxRecords: Int? = nil, interval: Duration = .seconds(60),
        batchLimit: Int = 1000
    ) {
        self.maxAge = maxAge
        self.maxRecords = maxRecords.map { max(0, $0) }
        self.interval = interval
        self.batchLimit = max(1, batchLimit)
    }

    /// The longest time between passes under a count bound: 1 s.
    public static let countBoundInterval: Duration = .seconds(1)

    /// Keeps everything: no pass runs.
    public static let keepEverything = RetentionPolicy(maxAge: nil, maxRecords: 0)
}
