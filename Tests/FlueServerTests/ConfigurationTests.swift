import FluePersistenceSelection
@testable import FlueEngine
@testable import FlueServer
import Logging
import Testing

@Suite struct ConfigurationTests {
    @Test func readsTheEnvironmentWithDefaults() throws {
        let defaults = try FlueConfiguration.fromEnvironment([:])
        #expect(defaults.port == 3000)
        #expect(defaults.host == "0.0.0.0")
        #expect(defaults.requestBodyLimit == 1 << 20)
        #expect(defaults.logLevel == .info)
        let custom = try FlueConfiguration.fromEnvironment([
            "PORT": "8080", "HOST": "127.0.0.1", "LOG_LEVEL": "DEBUG", "REQUEST_BODY_LIMIT": "2048",
        ])
        #expect(custom.port == 8080)
        #expect(custom.host == "127.0.0.1")
        #expect(custom.logLevel == .debug)
        #expect(custom.requestBodyLimit == 2048)
    }

    @Test(arguments: ["FLUE_MODE", "FLUE_CLI_TARGET", "FLUE_CLI_NAME", "FLUE_INTERNAL_CLI_IPC"])
    func refusesReservedVariables(name: String) throws {
        let error = try #require(throws: ConfigurationError.self) {
            try FlueConfiguration.fromEnvironment([name: "1"])
        }
        #expect(error.variable == name)
        #expect(error.message.contains("reserved for the Flue CLI"))
    }

    @Test func readsDurationsAndBuffers() throws {
        let custom = try FlueConfiguration.fromEnvironment([
            "LONG_POLL_TIMEOUT_SECONDS": "0.5", "WRITE_STALL_TIMEOUT_SECONDS": "2.5", "SEND_BUFFER_BYTES": "65536",
            "RUN_LEASE_SECONDS": "9",
        ])
        #expect(custom.longPollTimeout == .milliseconds(500))
        #expect(custom.writeStallTimeout == .milliseconds(2500))
        #expect(custom.sendBufferBytes == 65536)
        #expect(custom.engine.runLease == .seconds(9) && custom.engine.runHeartbeatInterval == .seconds(3))
        let defaults = try FlueConfiguration.fromEnvironment([:])
        #expect(defaults.sendBufferBytes == 262_144 && defaults.writeStallTimeout == .seconds(30))
        #expect(try FlueConfiguration.fromEnvironment(["SEND_BUFFER_BYTES": "0"]).sendBufferBytes == nil, "0 = system autotuning")
    }

    @Test func readsLimitsAndTimeouts() throws {
        let custom = try FlueConfiguration.fromEnvironment([
            "REQUEST_HEAD_TIMEOUT_SECONDS": "5", "REQUEST_BODY_TIMEOUT_SECONDS": "0.5", "KEEP_ALIVE_TIMEOUT_SECONDS": "3605",
            "MAX_CONNECTIONS": "100", "MAX_LIVE_READS": "80", "MAX_LIVE_READS_PER_STREAM": "8", "LISTEN_BACKLOG": "1024",
            "HEALTH_CHECK_PATH": "/healthz", "PUBLIC_URL": "HTTPS://api.example.com:8443/",
        ])
        #expect(custom.requestHeadTimeout == .seconds(5) && custom.requestBodyTimeout == .milliseconds(500))
        #expect(custom.keepAliveTimeout == .seconds(3605))
        #expect(custom.maxConnections == 100 && custom.maxLiveReads == 80 && custom.maxLiveReadsPerStream == 8)
        #expect(custom.listenBacklog == 1024 && custom.healthCheckPath == "/healthz")
        #expect(custom.publicURL == "https://api.example.com:8443")
        let defaults = try FlueConfiguration.fromEnvironment([:])
        #expect(defaults.requestHeadTimeout == .seconds(20) && defaults.requestBodyTimeout == .seconds(60))
        #expect(defaults.keepAliveTimeout == .seconds(75), "above the ALB's default idle timeout of 60 s")
        #expect((16...4096).contains(defaults.maxConnections))
        #expect(defaults.maxLiveReads == 3072 && defaults.maxLiveReadsPerStream == 256 && defaults.listenBacklog == 256)
    }

    @Test(arguments: [
        ("PORT", "eighty"), ("PORT", "70000"), ("LOG_LEVEL", "loud"), ("REQUEST_BODY_LIMIT", "-1"),
        ("LONG_POLL_TIMEOUT_SECONDS", "1e300"), ("RUN_LEASE_SECONDS", "inf"), ("RECOVERY_SCAN_SECONDS", "nan"),
        ("WRITE_STALL_TIMEOUT_SECONDS", "0"), ("SEND_BUFFER_BYTES", "12"), ("SEND_BUFFER_BYTES", "99999999999999999999"),
        ("REQUEST_HEAD_TIMEOUT_SECONDS", "0"), ("REQUEST_BODY_TIMEOUT_SECONDS", "-3"), ("KEEP_ALIVE_TIMEOUT_SECONDS", "forever"),
        ("MAX_CONNECTIONS", "0"), ("MAX_CONNECTIONS", "99999999999999999999"), ("MAX_LIVE_READS", "-1"),
        ("MAX_LIVE_READS_PER_STREAM", "1.5"), ("LISTEN_BACKLOG", "70000"), ("HEALTH_CHECK_PATH", "health"),
        ("PUBLIC_URL", "api.example.com"), ("PUBLIC_URL", "https://api.example.com/v1"), ("PUBLIC_URL", "ftp://x"),
        ("PUBLIC_URL", "https://user@api.example.com"), ("RETENTION_MAX_AGE_HOURS", "-1"),
        ("RETENTION_MAX_AGE_HOURS", "1e300"), ("RETENTION_MAX_AGE_HOURS", "nan"), ("RETENTION_MAX_RECORDS", "-5"),
        ("RETENTION_MAX_RECORDS", "lots"), ("RETENTION_INTERVAL_SECONDS", "0"), ("METRICS", "statsd"),
    ])
    func rejectsBadValuesNamingTheVariable(name: String, value: String) throws {
        let error = try #require(throws: ConfigurationError.self) {
            try FlueConfiguration.fromEnvironment([name: value])
        }
        #expect(error.variable == name)
        #expect(error.message.contains(value))
    }

    @Test func readsTheRetentionPolicy() throws {
        let defaults = try FlueConfiguration.fromEnvironment([:]).engine.retention
        #expect(defaults == RetentionPolicy(maxAge: .seconds(604_800), maxRecords: nil, interval: .seconds(60)))
        let custom = try FlueConfiguration.fromEnvironment([
            "RETENTION_MAX_AGE_HOURS": "1.5", "RETENTION_MAX_RECORDS": "250", "RETENTION_INTERVAL_SECONDS": "5",
        ]).engine.retention
        #expect(custom == RetentionPolicy(maxAge: .seconds(5400), maxRecords: 250, interval: .seconds(5)))
        let off = try FlueConfiguration.fromEnvironment(["RETENTION_MAX_AGE_HOURS": "0", "RETENTION_MAX_RECORDS": "0"])
        #expect(off.engine.retention == .keepEverything)
    }

    @Test func theApplicationChoosesTheAdapterAndADatabaseItDidNotOpenStopsTheStart() throws {
        #expect(try PersistenceSelection.fromEnvironment([:]).name == "memory")
        #expect(try PersistenceSelection.fromEnvironment(["SQLITE_PATH": "/tmp/flue-selection-test.sqlite"]).name == "sqlite")
        #expect(
            try PersistenceSelection.fromEnvironment(["DATABASE_URL": "postgresql://u@127.0.0.1:1/db?sslmode=disable"]).name
                == "postgres")
        #expect(try FlueServer.inMemoryUnlessConfigured([:]).name == "memory")
        for variable in ["DATABASE_URL", "SQLITE_PATH"] {
            let error = try #require(throws: ConfigurationError.self) {
                try FlueServer.inMemoryUnlessConfigured([variable: "set"])
            }
            #expect(error.variable == variable)
            #expect(error.message.contains("PersistenceSelection.fromEnvironment()"))
        }
    }
}
