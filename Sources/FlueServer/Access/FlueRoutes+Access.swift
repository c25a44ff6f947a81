import FlueEngine
import Hummingbird

extension FlueRoutes {
    /// The request's principal under `access`, within its request budget. Throws `401` (no or
    /// refused credentials), `503` (keys unavailable) or `429`.
    func authenticate(_ request: Request, _ access: AccessPolicy) async throws -> Principal {
        let principal: Principal?
        do {
            principal = try await access.authenticator.authenticate(request)
        } catch AuthenticationFailure.invalid(let reason) {
            server.logger.debug("credentials refused", metadata: ["path": "\(request.uri.path)", "reason": "\(reason)"])
            throw FlueHTTPError.unauthorized(challenge: access.authenticator.challenge, refusal: reason)
        } catch AuthenticationFailure.unavailable(let reason) {
            server.logger.warning("authentication unavailable", metadata: ["reason": "\(reason)"])
            throw FlueHTTPError.serviceUnavailable(reason)
        }
        guard let principal else {
            throw FlueHTTPError.unauthorized(challenge: access.authenticator.challenge, refusal: nil)
        }
        try limiter?.admitRequest(principal.subject)
        return principal
    }

    /// Whether the current principal may touch `resource` (always, without an access policy).
    func allows(_ resource: ProtectedResource) async throws -> Bool {
        guard let access, let principal = Principal.current else { return true }
        return try await access.ownership.allows(principal, resource)
    }

    /// Runs an agent admission within the principal's concurrent-submission limit. A retry of a
    /// prompt already admitted (`replaying`: the id its `Idempotency-Key` stands for) admits
    /// nothing new, so the limit does not refuse it.
    func admittingWithinLimits(
        replaying: String?, _ admit: () async throws -> SubmissionReceipt
    ) async throws -> SubmissionReceipt {
        guard let limiter, let principal = Principal.current else { return try await admit() }
        let submissions = engine.stores.submissions
        let reservation: SubmissionReservation?
        do {
            reservation = try await limiter.reserveSubmission(
                principal.subject, isSettled: { try await submissions.submission($0)?.status.isSettled ?? true })
        } catch let refusal as FlueHTTPError {
            guard let replaying, try await submissions.submission(replaying) != nil else { throw refusal }
            return try await admit()
        }
        guard let reservation else { return try await admit() }
        do {
            let receipt = try await admit()
            limiter.commit(reservation, id: receipt.submissionId)
            return receipt
        } catch {
            limiter.release(reservation)
            throw error
        }
    }
}
