import AsyncHTTPClient
import FlueRuntime
import FlueServer
import Foundation
import JWTKit
import Logging
import NIOCore

/// Verification keys fetched from a JWKS URL (RFC 7517 §5) and cached: fetched on first use,
/// refreshed after ``refreshInterval``, and fetched again at once when a token names a key id
/// the cache does not hold (the issuer rotated its keys), at most once per
/// ``minimumRefetchInterval`` so that tokens with made-up key ids cannot hammer the issuer.
///
/// - One fetch at a time: concurrent callers share it; while keys are held, callers that find
///   them due for refresh during a fetch use them instead of waiting.
/// - A failed refresh keeps the keys already held (and is retried after the refetch interval);
///   with none held yet, callers get ``AuthenticationFailure/unavailable(_:)`` at once until the
///   interval has passed.
/// - Each key is pinned to one algorithm: its `alg`, or for a key without one, RS256 for `RSA`
///   and ES256 for `EC` P-256 (RFC 7518 §3.1). Keys for encryption (`use: enc`), without `kid`,
///   of an algorithm not in `algorithms`, or that JWTKit cannot read are skipped, so one odd key
///   does not take down the set. JWTKit would otherwise build a key's verifier from the token's
///   own `alg` when the key names none, and fall back to a default key for an unknown `kid`.
actor JWKSKeySource {
    /// Keys and the algorithm each `kid` is pinned to.
    struct KeySet: Sendable {
        let collection: JWTKeyCollection
        let algorithms: [String: String]
    }

    let url: String
    let httpClient: HTTPClient
    let refreshInterval: Duration
    let minimumRefetchInterval: Duration
    let fetchTimeout: Duration
    let algorithms: Set<String>
    let logger: Logger
    private var keys: KeySet?
    /// When the held keys are due for a refresh.
    private var refreshAt: ContinuousClock.Instant?
    /// When the last fetch started.
    private var attemptedAt: ContinuousClock.Instant?
    /// The fetch in progress, shared by every caller that needs its result.
    private var fetching: Task<KeySet, any Error>?

    init(
        url: String, httpClient: HTTPClient, refreshInterval: Duration, minimumRefetchInterval: Duration,
        fetchTimeout: Duration, algorithms: Set<String>, logger: Logger
    ) {
        self.url = url
        self.httpClient = httpClient
        self.refreshInterval = refreshInterval
        self.minimumRefetchInterval = minimumRefetchInterval
        self.fetchTimeout = fetchTimeout
        self.algorithms = algorithms
        self.logger = logger
    }

    static let unavailable = AuthenticationFailure.unavailable("The keys to verify tokens could not be fetched; retry shortly.")

    /// The current keys; fetched when none are held or they are due (unless a fetch is already
    /// under way and keys are held: then those).
    func current() async throws -> KeySet {
        let now = ContinuousClock.now
        if let keys {
            if let refreshAt, now < refreshAt { return keys }
            if fetching != nil { return keys }
        } else if fetching == nil, let attemptedAt, now - attemptedAt < minimumRefetchInterval {
            throw Self.unavailable
        }
        return try await refresh()
    }

    /// Keys fetched again because a token named an unknown key id; `nil` when the last fetch
    /// started less than ``minimumRefetchInterval`` ago (the unknown id stays unknown).
    func refetchForUnknownKeyId() async throws -> KeySet? {
        if fetching == nil, let attemptedAt, ContinuousClock.now - attemptedAt < minimumRefetchInterval { return nil }
        return try await refresh()
    }

    private func refresh() async throws -> KeySet {
        if let fetching { return try await fetching.value }
        attemptedAt = .now
        // Unstructured only so that concurrent callers can await the same fetch; it is awaited
        // right here and ends within `fetchTimeout`.
        let task = Task { try await self.fetchAndInstall() }
        fetching = task
        defer { fetching = nil }
        return try await task.value
    }

    private func fetchAndInstall() async throws -> KeySet {
        do {
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "accept", value: "application/json")
            let response = try await httpClient.execute(request, timeout: .milliseconds(Int64(fetchTimeout.wholeMilliseconds)))
            let body = try await response.body.collect(upTo: 1 << 20)
            guard response.status == .ok else { throw JWKSFetchError("the JWKS endpoint answered HTTP \(response.status.code)") }
            let set = try await keySet(JSONValue(parsing: Data(buffer: body)))
            keys = set
            refreshAt = .now + refreshInterval
            return set
        } catch {
            logger.warning("JWKS fetch failed", metadata: ["url": "\(url)", "error": "\(error)"])
            guard let keys else { throw Self.unavailable }
            refreshAt = .now + minimumRefetchInterval
            return keys
        }
    }

    /// The usable keys of a JWKS document.
    private func keySet(_ document: JSONValue) async throws -> KeySet {
        guard let entries = document["keys"]?.arrayValue else { throw JWKSFetchError("the document has no \"keys\" array") }
        let collection = JWTKeyCollection()
        var pinned: [String: String] = [:]
        for entry in entries {
            guard entry["use"]?.stringValue != "enc" else { continue }
            guard let kid = entry["kid"]?.stringValue, !kid.isEmpty else {
                logger.info("JWKS key without kid skipped", metadata: ["url": "\(url)"])
                continue
            }
            do {
                var jwk = try JSONDecoder().decode(JWK.self, from: entry.jsonData())
                let algorithm = jwk.algorithm?.rawValue ?? Self.defaultAlgorithm(entry)
                guard let algorithm, algorithms.contains(algorithm), let pinnedAlgorithm = JWK.Algorithm(rawValue: algorithm)
                else {
                    logger.info("JWKS key of another algorithm skipped", metadata: ["kid": "\(kid)", "alg": "\(jwk.algorithm?.rawValue ?? "none")"])
                    continue
                }
                jwk.algorithm = pinnedAlgorithm
                try await collection.add(jwk: jwk, isDefault: false)
                pinned[kid] = algorithm
            } catch {
                logger.info("JWKS key JWTKit cannot read skipped", metadata: ["kid": "\(kid)", "error": "\(error)"])
            }
        }
        return KeySet(collection: collection, algorithms: pinned)
    }

    /// RS256 for an RSA key and ES256 for a P-256 key that name no algorithm.
    static func defaultAlgorithm(_ entry: JSONValue) -> String? {
        switch (entry["kty"]?.stringValue, entry["crv"]?.stringValue) {
        case ("RSA", _): "RS256"
        case ("EC", "P-256"): "ES256"
        default: nil
        }
    }
}

struct JWKSFetchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
