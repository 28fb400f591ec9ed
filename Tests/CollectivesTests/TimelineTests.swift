import Foundation
import Testing
@testable import Collectives

@Suite struct TimelineTests {
    struct Failure: Error {}

    @Test func spansAreRecordedInOrderEvenWhenTheyThrow() throws {
        let timeline = Timeline()
        let value = timeline.span("forward", .compute) { 42 }
        #expect(value == 42)
        #expect(throws: Failure.self) { try timeline.span("backward", .compute) { throw Failure() } }
        let optional: Timeline? = timeline, none: Timeline? = nil
        optional.span("pack", .optimizer) {}
        #expect(none.span("pack", .optimizer) { 7 } == 7)
        #expect(timeline.spans.map(\.name) == ["forward", "backward", "pack"])
        #expect(timeline.spans.map(\.category) == [.compute, .compute, .optimizer])
        for (a, b) in zip(timeline.spans, timeline.spans.dropFirst()) {
            #expect(a.start >= 0 && a.duration >= 0 && a.start + a.duration <= b.start)
        }
        timeline.restartClock()
        #expect(timeline.spans.isEmpty)
    }

    @Test func theTraceIsChromeTraceEventJSONInMicroseconds() throws {
        let timeline = Timeline()
        let origin = timeline.origin
        timeline.record("vote \"a\"\\b\n", .optimizer, from: origin + 0.0015, to: origin + 0.0015 + 2.5e-6)
        timeline.record("wait for alltoall", .communication, from: origin + 3, to: origin + 3.25)
        let file = Timeline.chromeTrace(joining: [timeline.chromeTraceEvents(rank: 0), "", Timeline().chromeTraceEvents(rank: 2)])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(file.utf8)) as? [String: Any])
        let events = try #require(json["traceEvents"] as? [[String: Any]])
        #expect(events.count == 4)  // two spans and two process names
        #expect(events.filter { $0["ph"] as? String == "M" }.compactMap { $0["pid"] as? Int } == [0, 2])
        let spans = events.filter { $0["ph"] as? String == "X" }
        #expect(spans.map { $0["name"] as? String } == ["vote \"a\"\\b\n", "wait for alltoall"])
        #expect(spans.map { $0["cat"] as? String } == ["optimizer", "communication"])
        let ts = spans.compactMap { ($0["ts"] as? NSNumber)?.doubleValue }, dur = spans.compactMap { ($0["dur"] as? NSNumber)?.doubleValue }
        #expect(ts.count == 2 && abs(ts[0] - 1500) < 1e-6 && abs(ts[1] - 3_000_000) < 1e-3)
        #expect(dur.count == 2 && abs(dur[0] - 2.5) < 1e-6 && abs(dur[1] - 250_000) < 1e-3)
    }
}
