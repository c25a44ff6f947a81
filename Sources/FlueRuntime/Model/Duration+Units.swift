import Foundation

extension Duration {
    /// Whole milliseconds, truncated toward zero; saturates instead of trapping on durations
    /// beyond `Int` milliseconds (about 292 million years).
    package var wholeMilliseconds: Int {
        let (fromSeconds, overflow) = components.seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return components.seconds < 0 ? .min : .max }
        let (total, overflowed) = fromSeconds.addingReportingOverflow(components.attoseconds / 1_000_000_000_000_000)
        if overflowed { return fromSeconds < 0 ? .min : .max }
        return Int(clamping: total)
    }

    /// The duration in seconds, for `Date` and `TimeInterval` arithmetic.
    package var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
