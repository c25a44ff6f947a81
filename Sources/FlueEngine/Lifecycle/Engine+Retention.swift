import FluePersistence
import Foundation
import Logging

extension Engine {
    /// The store's retention and the count bound a pass applies, or `nil` when nothing is to be
    /// removed (no retention in the store, or a policy without age and count bounds).
    private func activeRetention() -> (any RetentionStore, Int?)? {
        guard let retention = stores.retention else { return nil }
        let bound = retentionBound(retention)
        guard configuration.retention.maxAge != nil || bound != nil else { return nil }
        return (retention, bound)
    }

    /// The count bound a pass applies: the policy's, else the store's default; `nil` for none.
    private func retentionBound(_ retention: any RetentionStore) -> Int? {
        switch configuration.retention.maxRecords {
        case .none: retention.defaultKeepAtMost
        case .some(let bound) where bound <= 0: nil
        case .some(let bound): bound
        }
    }

    /// Removes old, finished work once, as the retention loop does every
    /// ``RetentionPolicy/interval``: repeats passes while one removes a full batch. Returns what
    /// was removed; throws the store's error (`PersistenceError`). Does nothing when the policy
    /// keeps everything or the store has no ``FlueStores/retention``.
    @discardableResult
    public func pruneOldWork() async throws -> RetentionReport {
        let policy = configuration.retention
        guard let (retention, bound) = activeRetention() else { return RetentionReport() }
        var total = RetentionReport()
        while !Task.isCancelled {
            let cutoff = policy.maxAge.map { Date.nowMilliseconds.addingTimeInterval(-$0.timeInterval) } ?? .distantPast
            let request = RetentionRequest(olderThan: cutoff, keepAtMost: bound, batchLimit: policy.batchLimit)
            let pass = try await retention.prune(request)
            total.runs += pass.runs
            total.submissions += pass.submissions
            total.agentStreams += pass.agentStreams
            guard pass.reached(request.batchLimit) else { break }
        }
        return total
    }

    /// The retention loop of ``run()``: a pass at start and every interval; failures are logged and
    /// retried at the next interval.
    func retentionLoop() async {
        let policy = configuration.retention
        guard stores.retention != nil else {
            logger.notice("the store does not implement retention: ended runs and settled submissions are kept forever")
            return
        }
        guard let (_, bound) = activeRetention() else {
            logger.info("retention off: ended runs and settled submissions are kept forever")
            return
        }
        // A count bound holds between passes only if they are frequent: at hundreds of runs a
        // second, a minute's worth is tens of thousands of records.
        let interval = bound == nil ? policy.interval : min(policy.interval, RetentionPolicy.countBoundInterval)
        logger.info(
            "retention on",
            metadata: [
                "maxAge": "\(policy.maxAge.map { "\($0.timeInterval)s" } ?? "none")",
                "maxRecords": "\(bound.map(String.init) ?? "none")", "interval": "\(interval.timeInterval)s",
            ])
        while !Task.isCancelled {
            do {
                let removed = try await pruneOldWork()
                if removed != RetentionReport() {
                    logger.debug(
                        "retention pass",
                        metadata: [
                            "runs": "\(removed.runs)", "submissions": "\(removed.submissions)",
                            "agentStreams": "\(removed.agentStreams)",
                        ])
                }
            } catch is CancellationError {
                return
            } catch {
                logger.warning("retention pass failed; retrying at the next interval", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }
}
