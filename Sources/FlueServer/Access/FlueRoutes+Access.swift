import FlueEngine
import FluePersistence
import Hummingbird

extension FlueRoutes {
    /// The request's principal under `access`, within its request budget. Throws `401` (no or
    /// refused credentials), `503` (keys unavailable) or `429`.
    func authenticate(_ request: Request, _ access: AccessPolicy) async throws -> Principal {
        let principal: Principal?
        do {
            principal = try await access.authenticator.authenticate(request)
        } catch AuthenticationFailure.invalid(let reason) {
            server.logger.info("credentials refused", metadata: ["path": "\(request.uri.path)", "reason": "\(reason)"])
            throw FlueHTTPError.unauthorized(challenge: access.authenticator.challenge, refusal: reason)
        } catch AuthenticationFailure.unavailable(let reason) {
            var error = FlueHTTPError.serviceUnavailable(reason)
            error.retryAfter = 5
            throw error
        }
        guard let principal else {
            throw FlueHTTPError.unauthorized(challenge: access.authenticator.challenge, refusal: nil)
        }
        try limiter?.admitRequest(principal.subject)
        return principal
    }

    /// Whether the current principal may touch `resource` (always, without an access policy;
    /// never, with one but no principal).
    func allows(_ resource: ProtectedResource) async throws -> Bool {
        guard let access else { return true }
        guard let principal = Principal.current else { return false }
        return try await access.ownership.allows(principal, resource)
    }

    /// Runs an admission (an agent prompt, or a workflow run: `id` names what it admitted)
    /// within the principal's limit on accepted work in progress. A retry of work already
    /// admitted (`replaying`: the id its `Idempotency-Key` stands for, if that exists) admits
    /// nothing new, so the limit does not refuse it.
    func admittingWithinLimits<Receipt>(
        replaying: String?, id: (Receipt) -> String, _ admit: () async throws -> Receipt
    ) async throws -> Receipt {
        guard let limiter, limiter.limits.concurrentSubmissions != nil, let principal = Principal.current else {
            return try await admit()
        }
        let stores = engine.stores
        let reservation: SubmissionReservation?
        do {
            reservation = try await limiter.reserveSubmission(principal.subject) { try await Self.isSettled($0, in: stores) ?? true }
        } catch let refusal as FlueHTTPError {
            guard let replaying, try await Self.isSettled(replaying, in: stores) != nil else { throw refusal }
            return try await admit()
        }
        guard let reservation else { return try await admit() }
        do {
            let receipt = try await admit()
            limiter.commit(reservation, id: id(receipt))
            return receipt
        } catch {
            limiter.release(reservation)
            throw error
        }
    }

    /// Whether the run or submission `id` has ended; `nil` when it does not exist.
    private static func isSettled(_ id: String, in stores: FlueStores) async throws -> Bool? {
        if id.hasPrefix("run_") { return try await stores.runs.getRun(id).map { $0.status != .active } }
        return try await stores.submissions.submission(id).map { $0.status.isSettled }
    }
}
