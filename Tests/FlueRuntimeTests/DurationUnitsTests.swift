import FlueRuntime
import Foundation
import Testing

@Suite struct DurationUnitsTests {
    @Test func wholeMillisecondsTruncateAndSaturate() {
        #expect(Duration.milliseconds(1500).wholeMilliseconds == 1500)
        #expect(Duration.microseconds(2999).wholeMilliseconds == 2, "truncated, not rounded")
        #expect(Duration.seconds(-2).wholeMilliseconds == -2000)
        #expect(Duration.seconds(Int64.max).wholeMilliseconds == Int.max, "saturates instead of trapping")
        #expect(Duration.seconds(Int64.min).wholeMilliseconds == Int.min)
    }

    @Test func timeIntervalKeepsFractions() {
        #expect(Duration.milliseconds(2500).timeInterval == 2.5)
        #expect(Duration.seconds(30).timeInterval == 30)
    }
}
