#if canImport(Glibc)
import Glibc
#endif

/// Seconds from a monotonic clock (`CLOCK_MONOTONIC`): the same clock in every process of
/// one machine.
public func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

/// What one rank did when: named spans of time, written as Chrome trace-event JSON that
/// Perfetto (ui.perfetto.dev) and chrome://tracing open, one process per rank.
///
/// Give a timeline to a ``Communicator`` (its counted calls become `communication` spans) and
/// to a ``SignAllreduce``'s communicator (its pack, vote and unpack become spans too), and to
/// whatever runs the steps; then ``chromeTraceEvents(rank:)`` on every rank, gathered, is the
/// file:
///
/// ```swift
/// let timeline = Timeline()
/// communicator.timeline = timeline
/// try timeline.span("forward", .compute) { model.forward(batch) }
/// ```
///
/// Times are from ``origin``; a run that starts all ranks at a barrier and calls
/// ``restartClock()`` right after it has their timelines lined up (to the barrier's skew, on
/// one machine; each host's own clock across hosts). Used from one thread at a time.
public final class Timeline {
    /// What a span was doing; the trace's category, which Perfetto can filter and colour by.
    public enum Category: String, Sendable {
        /// Gathering a batch.
        case data
        /// Forward and backward passes.
        case compute
        /// MPI calls that move a payload, and waits for them.
        case communication
        /// Local work of an optimizer step: packing, voting, unpacking, updating.
        case optimizer
        /// Evaluations.
        case evaluation
        /// Saving checkpoints.
        case checkpoint
    }

    /// One span: what, in which category, from `start` for `duration` seconds after ``origin``.
    public struct Span: Sendable, Equatable {
        /// What the span was, for example `"backward"` or `"alltoall"`.
        public let name: String
        /// Its category.
        public let category: Category
        /// Seconds from the timeline's origin to the span's start.
        public let start: Double
        /// The span's length in seconds.
        public let duration: Double
    }

    /// The spans recorded so far, in the order they ended.
    public private(set) var spans: [Span] = []
    /// The monotonic time (``monotonicSeconds()``) that is time zero.
    public private(set) var origin: Double

    /// An empty timeline whose time zero is now.
    public init() { origin = monotonicSeconds() }

    /// Forgets the spans and makes now time zero: what a run does right after the barrier
    /// that starts it on every rank.
    public func restartClock() {
        spans.removeAll(keepingCapacity: true)
        origin = monotonicSeconds()
    }

    /// Runs `body` and records it as a span named `name`, also when it throws.
    @inlinable
    public func span<T>(_ name: String, _ category: Category, _ body: () throws -> T) rethrows -> T {
        let started = monotonicSeconds()
        defer { record(name, category, from: started, to: monotonicSeconds()) }
        return try body()
    }

    /// Records a span from `start` to `end`, both ``monotonicSeconds()``.
    public func record(_ name: String, _ category: Category, from start: Double, to end: Double) {
        spans.append(Span(name: name, category: category, start: start - origin, duration: max(0, end - start)))
    }

    /// The spans as comma-separated trace events of process `rank`, with its name: the body of
    /// a `traceEvents` array, in microseconds, ready to be joined with other ranks' events.
    public func chromeTraceEvents(rank: Int) -> String {
        var events = [#"{"name":"process_name","ph":"M","pid":\#(rank),"tid":0,"args":{"name":"rank \#(rank)"}}"#]
        events.reserveCapacity(spans.count + 1)
        for span in spans {
            events.append(#"{"name":\#(jsonString(span.name)),"cat":"\#(span.category.rawValue)","ph":"X","pid":\#(rank),"tid":0,"#
                          + #""ts":\#(Self.microseconds(span.start)),"dur":\#(Self.microseconds(span.duration))}"#)
        }
        return events.joined(separator: ",\n")
    }

    /// A whole trace file from the ranks' ``chromeTraceEvents(rank:)``.
    public static func chromeTrace(joining ranks: [String]) -> String {
        "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n" + ranks.filter { !$0.isEmpty }.joined(separator: ",\n") + "\n]}\n"
    }

    /// Seconds as microseconds with three decimals (nanoseconds), as trace events count time.
    private static func microseconds(_ seconds: Double) -> String {
        let nanoseconds = Int64((seconds * 1e9).rounded())
        let (whole, part) = nanoseconds.quotientAndRemainder(dividingBy: 1000)
        let sign = nanoseconds < 0 && whole == 0 ? "-" : ""
        return "\(sign)\(whole).\(String(abs(part) + 1000).dropFirst())"
    }
}

extension Optional where Wrapped == Timeline {
    /// Runs `body`, recorded as a span when there is a timeline: so that code with an
    /// optional timeline (``Communicator/timeline``) reads the same whether tracing is on.
    @inlinable
    public func span<T>(_ name: String, _ category: Timeline.Category, _ body: () throws -> T) rethrows -> T {
        guard let timeline = self else { return try body() }
        return try timeline.span(name, category, body)
    }
}
