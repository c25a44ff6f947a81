import AsyncHTTPClient
import FlueServer
import Foundation
import JWTKit
import Logging
import NIOCore

/// Verification keys fetched from a JWKS URL (RFC 7517 §5) and cached: fetched on first use,
/// refreshed after ``refreshInterval``, and fetched again at once when a token names a key id
/// the cache does not hold (the issuer rotated its keys), at most once per
/// ``minimumRefetchInterval`` so that tokens with made-up key ids cannot hammer the issuer.
/// A failed refresh keeps the keys already held.
///
/// JWTKit falls back to a collection's default key when a token's `kid` is not in it; a JWKS
/// has no default, so the key ids are tracked here and a token's `kid` is looked up first.
actor JWKSKeySource {
    /// Keys and the ids they are known by.
    struct KeySet: Sendable {
        let collection: JWTKeyCollection
        let keyIds: Set<String>
    }

    let url: String
    let httpClient: HTTPClient
    let refreshInterval: Duration
    let minimumRefetchInterval: Duration
    let fetchTimeout: Duration
    let logger: Logger
    private var keys: KeySet?
    private var fetchedAt: ContinuousClock.Instant?

    init(
        url: String, httpClient: HTTPClient, refreshInterval: Duration, minimumRefetchInterval: Duration,
        fetchTimeout: Duration, logger: Logger
    ) {
        self.url = url
        self.fetchTimeout = fetchTimeout
        self.httpClient = httpClient
        self.refreshInterval = refreshInterval
        self.minimumRefetchInterval = minimumRefetchInterval
        self.logger = logger
    }

    /// The current keys, fetched if none are held or they are older than ``refreshInterval``.
    /// Throws ``AuthenticationFailure/unavailable(_:)`` when none could ever be fetched.
    func current() async throws -> KeySet {
        if let keys, let fetchedAt, ContinuousClock.now - fetchedAt < refreshInterval { return keys }
        // While the endpoint is down and no keys were ever fetched, requests do not each wait on
        // a new fetch: one per refetch interval tries.
        if keys == nil, let fetchedAt, ContinuousClock.now - fetchedAt < minimumRefetchInterval { throw Self.unavailable }
        return try await refresh()
    }

    static let unavailable = AuthenticationFailure.unavailable("The keys to verify tokens could not be fetched; retry shortly.")

    /// Keys fetched again because a token named an unknown key id; `nil` when the last fetch is
    /// more recent than ``minimumRefetchInterval`` (the unknown id stays unknown).
    func refetchForUnknownKeyId() async throws -> KeySet? {
        if let fetchedAt, ContinuousClock.now - fetchedAt < minimumRefetchInterval { return nil }
        return try await refresh()
    }

    private func refresh() async throws -> KeySet {
        do {
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "accept", value: "application/json")
            let response = try await httpClient.execute(request, timeout: .milliseconds(Int64(fetchTimeout / .milliseconds(1))))
            let body = try await response.body.collect(upTo: 1 << 20)
            guard response.status == .ok else { throw JWKSFetchError(status: Int(response.status.code)) }
            let document = try JSONDecoder().decode(JWKS.self, from: Data(buffer: body))
            let collection = try await JWTKeyCollection().add(jwks: document)
            let set = KeySet(collection: collection, keyIds: Set(document.keys.compactMap { $0.keyIdentifier?.string }))
            keys = set
            fetchedAt = .now
            return set
        } catch {
            fetchedAt = .now  // a failed fetch also waits out the refetch interval
            logger.warning("JWKS fetch failed", metadata: ["url": "\(url)", "error": "\(error)"])
            if let keys { return keys }
            throw Self.unavailable
        }
    }
}

struct JWKSFetchError: Error, CustomStringConvertible {
    let status: Int
    var description: String { "the JWKS endpoint answered HTTP \(status)" }
}
