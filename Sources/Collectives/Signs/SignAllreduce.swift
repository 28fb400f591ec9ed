/// The bit-packed sign allreduce: every rank contributes one ±1 vote per coordinate, one bit
/// each, and every rank receives the same combined result.
///
/// The shape is that of a ring allreduce's reduce-scatter and allgather, never the naive
/// allgather-everything-and-vote:
///
/// 1. pack: the signs of a ``SignSource`` go into 64-coordinate words (fused with whatever
///    computes the values, such as Lion's momentum, and with the non-finite check of
///    ``NonFiniteInput/skip``);
/// 2. alltoall: chunk j of the words goes to rank j, which owns it;
/// 3. vote: each owner counts its chunk's +1 votes with bit-sliced counters;
/// 4. allgather: the owners' result planes go back to every rank;
/// 5. unpack: the result is decoded into a ``SignSink`` (fused with whatever consumes it,
///    such as Lion's update).
///
/// Each rank sends about 2·(N−1)/N·d/8 bytes for majority vote, against 2·(N−1)/N·4d for an
/// fp32 ring allreduce: 32× less, whatever N. The whole vector is packed first; then it is
/// exchanged in segments of ``segmentLength`` coordinates that are pipelined: segment k is
/// voted while k+1 is exchanged, and unpacked while k+1 is gathered. Any N ≥ 1 and any
/// length work; chunks are padded to whole words.
///
/// One instance holds the work buffers (1/32 of the vector's bytes for the packed signs, and
/// a few segments' worth) and is reused call after call. Every rank must call with the same
/// length, reduction, segment length and non-finite policy; by default that is checked first
/// (see ``Communicator/verifiesArguments``), so a mismatch throws on every rank instead of hanging.
///
/// ```swift
/// let signs = SignAllreduce(communicator: try world.duplicate())
/// let votes = try signs.allreduce(signsOf: gradient)      // ±1 per coordinate
/// try signs.allreduce(FloatSource(input), into: FloatSink(output))
/// ```
public final class SignAllreduce {
    /// The communicator the votes travel on; its ``Communicator/traffic`` counts the bytes.
    public let communicator: Communicator
    /// How the votes are combined.
    public let reduction: SignReduction
    /// What exact zeros and NaNs vote.
    public let zeroPolicy: ZeroSignPolicy
    /// Seeds the coin flips of the zero policy and the tie-break.
    public let seed: UInt64
    /// Coordinates per pipelined segment.
    public let segmentLength: Int
    /// Coordinates per bucket of the overlapped form
    /// (``allreduce(_:into:nonFinite:whileFilling:)``): each bucket starts its exchange as
    /// soon as its coordinates are final.
    public let bucketLength: Int
    /// How the exchange is laid over the nodes (``ExchangeShape/flat`` by default), in the
    /// plain and the overlapped form alike.
    public let shape: ExchangeShape

    /// Calls so far: with ``seed``, it keys each call's coin flips. Set it only to restore the
    /// state of a saved run (every rank to the same value).
    public var calls: UInt64 = 0
    private var workspace: SignWorkspace?
    /// The overlapped form's buffers, one set per bucket.
    var bucketWorkspaceStorage: BucketWorkspace?
    /// The overlapped form gathers on a duplicate of ``communicator``, so that its gathers and
    /// alltoalls, started in an order that depends on timing, are each in the same order on
    /// every rank.
    var gatherCommunicatorStorage: Communicator?
    /// What the ranks last agreed the overlapped form exchanges (`nil`: agree at the next call).
    var agreedOverlapShape: OverlapShape?
    /// The node-aware exchange's groups once made: `.some(nil)` when ``shape`` came out flat.
    var nodeGroupsStorage: NodeGroups??
    /// The node-aware exchange's own buffers, plain and overlapped.
    var nodeWorkspaceStorage: NodeWorkspace?
    var nodeBucketWorkspaceStorage: NodeBucketWorkspace?

    /// A sign allreduce on `communicator`.
    ///
    /// - Parameters:
    ///   - reduction: majority vote (default, with an unbiased tie-break) or average.
    ///   - zeroPolicy: what exact zeros and NaNs vote (default: a fair coin).
    ///   - seed: makes the coin flips reproducible; pass the same seed on every rank.
    ///   - segmentLength: coordinates per pipelined segment (default 2²² = 4 Mi).
    ///   - bucketLength: coordinates per bucket of the overlapped form (default 2¹⁸ = 256 Ki).
    ///   - shape: flat (default) or node-aware; the same result either way.
    public init(communicator: Communicator, reduction: SignReduction = .majorityVote,
                zeroPolicy: ZeroSignPolicy = .random, seed: UInt64 = 0, segmentLength: Int = 1 << 22,
                bucketLength: Int = 1 << 18, shape: ExchangeShape = .flat) {
        self.communicator = communicator
        self.reduction = reduction
        self.zeroPolicy = zeroPolicy
        self.seed = seed
        self.segmentLength = segmentLength
        self.bucketLength = bucketLength
        self.shape = shape
    }

    /// Combines the signs of `source` across ranks and writes the result to `sink`.
    /// Source and sink must have the same number of coordinates on this rank, and every rank
    /// must pass the same number and the same `nonFinite`.
    ///
    /// Returns `true`, or with `nonFinite: .skip`, `false` on every rank when some rank's
    /// source held a NaN or an infinity; then no sink was written. (What the source writes in
    /// ``SignSource/finish(_:valid:)`` happens in the pack, before the verdict: keep it only
    /// when the call returns `true`.)
    ///
    /// The pack and unpack are specialized for `Source` and `Sink` (this method is
    /// `@inlinable`); the exchange itself is not generic.
    @inlinable @discardableResult
    public func allreduce<Source: SignSource, Sink: SignSink>(_ source: Source, into sink: Sink,
                                                              nonFinite: NonFiniteInput = .vote) throws -> Bool {
        let (pack, unpack) = kernels(source, sink, checksFinite: nonFinite == .skip)
        return try exchange(count: source.count, sinkCount: sink.count, sourceProblem: source.problem, nonFinite: nonFinite,
                            pack: pack, unpack: unpack)
    }

    /// The pack of `source` and the unpack into `sink`, specialized for their types.
    @inlinable
    func kernels<Source: SignSource, Sink: SignSink>(_ source: Source, _ sink: Sink, checksFinite: Bool) -> (Pack, Unpack) {
        let policy = zeroPolicy
        return ({ coordinates, words, ternaryPlaneStride, key in
                    SignKernels.pack(source, coordinates: coordinates, into: words, policy: policy, randomKey: key,
                                     ternaryPlaneStride: ternaryPlaneStride, checksFinite: checksFinite)
                },
                { wordCount, firstCoordinate, decoding, planes in
                    SignKernels.unpack(wordCount: wordCount, firstCoordinate: firstCoordinate, decoding: decoding,
                                       into: sink, planes)
                })
    }

    /// Writes the combined signs of `input` to `output` (same count on this rank and on
    /// every rank).
    public func allreduce(signsOf input: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>) throws {
        try allreduce(FloatSource(input), into: FloatSink(output))
    }

    /// Returns the combined signs of `input`.
    public func allreduce(signsOf input: [Float]) throws -> [Float] {
        var output = [Float](repeating: 0, count: input.count)
        try input.withUnsafeBufferPointer { input in
            try output.withUnsafeMutableBufferPointer { try allreduce(signsOf: input, into: $0) }
        }
        return output
    }

    /// Packs words of the source: a coordinate range (starting on a word), where the words
    /// go, the stride of a ternary input's second plane (0: one plane), the coin-flip key;
    /// returns whether the values checked were finite.
    @usableFromInline
    typealias Pack = (Range<Int>, UnsafeMutablePointer<UInt64>, Int, UInt64) -> Bool
    /// Unpacks result words into the sink: word count, first coordinate, decoding, planes.
    @usableFromInline
    typealias Unpack = (Int, Int, ResultDecoding, ContiguousPlanes) -> Void

    /// The non-generic body of ``allreduce(_:into:nonFinite:)``: agree, pack, verdict,
    /// pipelined exchange.
    @usableFromInline
    func exchange(count: Int, sinkCount: Int, sourceProblem: String?, nonFinite: NonFiniteInput,
                  pack: Pack, unpack: Unpack) throws -> Bool {
        let agreement = agreement(count: count, sinkCount: sinkCount, sourceProblem: sourceProblem, nonFinite: nonFinite,
                                  overlapped: false)
        // The bytes are counted by the alltoalls and allgathers inside.
        return try communicator.perform("SignAllreduce.allreduce", agreeing: agreement, payload: nil) {
            calls &+= 1
            let plan = self.plan(count: count)
            guard !plan.segments.isEmpty else { return true }
            let workspace = self.workspace(for: plan)
            let finite = communicator.timeline.span("pack", .optimizer) {
                packAll(pack, words: workspace.send.storage.baseAddress!, plan: plan)
            }
            if nonFinite == .skip, try !communicator.holdsOnEveryRank(finite) { return false }
            if let groups = try nodeGroups() {
                try nodeAwareExchange(plan, unpack: unpack, workspace: workspace, groups: groups)
            } else {
                try exchange(plan, unpack: unpack, workspace: workspace)
            }
            return true
        }
    }

    /// What every rank must agree on before a call, and this rank's problem with its
    /// arguments, if any.
    func agreement(count: Int, sinkCount: Int, sourceProblem: String?, nonFinite: NonFiniteInput,
                   overlapped: Bool) -> Agreement {
        let problem: String?
        let length = overlapped ? bucketLength : segmentLength
        if let sourceProblem {
            problem = sourceProblem
        } else if sinkCount != count {
            problem = "the source has \(count) coordinates but the sink has \(sinkCount); they must match"
        } else if length < 64 {
            problem = "\(overlapped ? "bucketLength" : "segmentLength") \(length) is below one 64-coordinate word"
        } else if case .nodeAware(let ranksPerNode?) = shape, ranksPerNode < 1 || communicator.size % ranksPerNode != 0 {
            problem = "ranksPerNode \(ranksPerNode) does not divide the \(communicator.size) ranks into nodes"
        } else {
            problem = nil
        }
        return Agreement(problem: problem, values: [
            AgreedValue(name: "coordinate count", value: count),
            AgreedValue(name: "reduction (1 vote/tie-break, 2 vote/zero ties, 3 average, 4 ternary average)", value: reduction.code),
            AgreedValue(name: "overlapped with the source's computation (0 no, 1 yes)", value: overlapped ? 1 : 0),
            AgreedValue(name: overlapped ? "bucket length" : "segment length", value: length),
            AgreedValue(name: "non-finite policy (1 vote, 2 skip)", value: nonFinite.code),
            AgreedValue(name: "exchange shape (0 flat, -1 node-aware by node, R node-aware with R ranks per node)",
                        value: shape.code),
        ])
    }

    /// The bytes one call sends from each rank (and receives at each rank) for `count`
    /// coordinates, padding included; with `nonFinite: .skip`, the verdict's 4-byte allreduce
    /// too (2·(N−1)/N·4 bytes by the ring convention). The node-aware shape's bytes (within
    /// and across nodes) once its first call has made its groups; before, the flat shape's.
    public func bytesPerRank(count: Int, nonFinite: NonFiniteInput = .vote) -> Int {
        let ranks = communicator.size
        let plan = self.plan(count: count)
        let verdict = nonFinite == .skip && !plan.segments.isEmpty ? 2 * (ranks - 1) * 4 / ranks : 0
        if case let groups?? = nodeGroupsStorage { return nodeAwareBytesPerRank(plan, groups) + verdict }
        return plan.bytesPerRank + verdict
    }

    /// How `count` coordinates are cut into segments of `length` (default: ``segmentLength``).
    func plan(count: Int, length: Int? = nil) -> SegmentPlan {
        SegmentPlan(count: count, ranks: communicator.size, segmentLength: length ?? segmentLength,
                    inputPlanes: reduction.inputPlanes, resultPlanes: reduction.resultPlanes(ranks: communicator.size))
    }

    private func workspace(for plan: SegmentPlan) -> SignWorkspace {
        if let workspace, workspace.fits(plan) { return workspace }
        let fresh = SignWorkspace(plan)
        workspace = fresh
        return fresh
    }

    /// Packs the whole vector into `words`, split over ``Parallel/threads``; returns whether
    /// the values checked were all finite.
    ///
    /// Everything is packed before anything is sent, so that with ``NonFiniteInput/skip`` the
    /// verdict is known before any sink is written.
    private func packAll(_ pack: Pack, words: UnsafeMutablePointer<UInt64>, plan: SegmentPlan) -> Bool {
        self.pack(pack, words: words, plan: plan, wordRange: 0..<plan.paddedWords)
    }

    /// Packs the words `wordRange` of the vector into `words` (which holds the whole packed
    /// vector), split over ``Parallel/threads``; returns whether the values checked were all
    /// finite. A coordinate's coin flip depends on the call and the coordinate only, so any
    /// split packs the same words.
    func pack(_ pack: Pack, words: UnsafeMutablePointer<UInt64>, plan: SegmentPlan, wordRange: Range<Int>) -> Bool {
        let key = SignBits.key(seed: seed, stream: calls << 20 | UInt64(communicator.rank))
        let ternaryPlaneStride = plan.inputPlanes == 2 ? plan.paddedWords : 0
        let first = wordRange.lowerBound * 64
        return Parallel.mapPieces(count: wordRange.count * 64) { piece in
            pack(piece.lowerBound + first..<piece.upperBound + first, words + wordRange.lowerBound + piece.lowerBound / 64,
                 ternaryPlaneStride, key)
        }.allSatisfy { $0 }
    }

    /// How the gathered result planes decode: signs, ternary signs or counts.
    func decoding(_ plan: SegmentPlan) -> ResultDecoding {
        switch (reduction, plan.resultPlanes) {
        case (.average, let planes): .count(planes: planes, ranks: communicator.size)
        case (.ternaryAverage, let planes): .ternaryCount(planes: planes, ranks: communicator.size)
        case (_, 2): .ternary
        default: .sign
        }
    }

    /// Counts the votes of `segment`'s chunk owned by this rank: `rows` is what the alltoall
    /// brought (every rank's words of that chunk), `voted` gets the result planes.
    func vote(_ segment: SegmentPlan.Segment, rows: UnsafePointer<UInt64>, into voted: UnsafeMutablePointer<UInt64>) {
        communicator.timeline.span("vote", .optimizer) {
            VoteKernel.vote(rows: rows, ranks: communicator.size, chunkWords: segment.chunkWords, reduction: reduction,
                            tieKey: SignBits.key(seed: ~seed, stream: calls),
                            firstWord: segment.firstWord + communicator.rank * segment.chunkWords, into: voted)
        }
    }

    /// Decodes `segment`'s gathered result planes (every owner's, in rank order) into the
    /// sink, owner by owner, so that each run of result words is contiguous.
    func unpack(_ segment: SegmentPlan.Segment, gathered: UnsafePointer<UInt64>, plan: SegmentPlan, decoding: ResultDecoding,
                _ decode: Unpack) {
        communicator.timeline.span("unpack", .optimizer) {
            let chunk = segment.chunkWords, planes = plan.resultPlanes
            Parallel.forEachPiece(count: segment.wordCount, alignment: 1) { words in
                var word = words.lowerBound
                while word < words.upperBound {
                    let owner = word / chunk
                    let end = min(words.upperBound, (owner + 1) * chunk)
                    decode(end - word, (segment.firstWord + word) * 64, decoding,
                           ContiguousPlanes(base: gathered + owner * planes * chunk + word - owner * chunk, stride: chunk))
                    word = end
                }
            }
        }
    }

    /// The pipeline over the packed segments: vote k and exchange k+1; unpack k−1 while k is
    /// gathered.
    private func exchange(_ plan: SegmentPlan, unpack decode: Unpack, workspace: SignWorkspace) throws {
        let decoding = decoding(plan)
        let segments = plan.segments
        func vote(_ index: Int) {
            self.vote(segments[index], rows: workspace.received[index % 2].storage.baseAddress!,
                      into: workspace.voted[index % 2].storage.baseAddress!)
        }
        func unpack(_ index: Int) {
            self.unpack(segments[index], gathered: workspace.gathered[index % 2].storage.baseAddress!, plan: plan,
                        decoding: decoding, decode)
        }
        func exchange(_ index: Int) throws -> Request {
            try communicator.startAlltoall(workspace.send, from: segments[index].firstWord, planes: plan.inputPlanes,
                                           planeStride: plan.paddedWords, into: workspace.received[index % 2],
                                           chunk: segments[index].chunkWords, agreeing: nil)
        }
        func gather(_ index: Int) throws -> Request {
            try communicator.startAllgather(workspace.voted[index % 2], into: workspace.gathered[index % 2],
                                            count: segments[index].chunkWords * plan.resultPlanes, agreeing: nil)
        }

        var exchanging: Request? = try exchange(0)
        var gathering: Request? = nil
        for index in segments.indices {
            try communicator.wait(for: exchanging.take()!)
            vote(index)
            if index + 1 < segments.count { exchanging = try exchange(index + 1) }
            if let previous = gathering.take() {
                try communicator.wait(for: previous)
                unpack(index - 1)
            }
            gathering = try gather(index)
        }
        try communicator.wait(for: gathering.take()!)
        unpack(segments.count - 1)
    }
}

/// How a vector of `count` coordinates is cut into pipelined segments and per-rank chunks.
struct SegmentPlan: Equatable {
    /// One segment: a run of words, split into `ranks` chunks of `chunkWords` words.
    struct Segment: Equatable {
        /// The segment's first word in the whole vector.
        let firstWord: Int
        /// Words holding coordinates.
        let wordCount: Int
        /// Words per rank's chunk: ⌈wordCount / ranks⌉.
        let chunkWords: Int
        /// `ranks × chunkWords`: words including padding.
        let paddedWords: Int
    }

    let ranks: Int
    /// Planes of each input word: 1, or 2 for a ternary input (stored a whole padded vector apart).
    let inputPlanes: Int
    let resultPlanes: Int
    let segments: [Segment]

    init(count: Int, ranks: Int, segmentLength: Int, inputPlanes: Int = 1, resultPlanes: Int) {
        self.ranks = ranks
        self.inputPlanes = inputPlanes
        self.resultPlanes = resultPlanes
        let totalWords = (count + 63) / 64
        let segmentWords = max(ranks, segmentLength / 64 / ranks * ranks)
        segments = stride(from: 0, to: totalWords, by: segmentWords).map { first in
            let words = min(segmentWords, totalWords - first)
            let chunk = (words + ranks - 1) / ranks
            return Segment(firstWord: first, wordCount: words, chunkWords: chunk, paddedWords: chunk * ranks)
        }
    }

    /// The most words any segment needs per rank's chunk.
    var largestChunk: Int { segments.map(\.chunkWords).max() ?? 0 }

    /// Words of all segments, padding included: the length of each plane of the packed vector.
    var paddedWords: Int { segments.last.map { $0.firstWord + $0.paddedWords } ?? 0 }

    /// Bytes each rank sends: its chunks to the N−1 other owners, then its result planes to them.
    var bytesPerRank: Int {
        segments.reduce(0) { $0 + (ranks - 1) * $1.chunkWords * (inputPlanes + resultPlanes) * 8 }
    }
}

/// The work buffers of a ``SignAllreduce``: the whole packed vector, and double buffers for
/// the segments in flight.
final class SignWorkspace {
    let ranks: Int
    let chunkCapacity: Int
    let inputPlanes: Int
    let planes: Int
    let send: MessageBuffer<UInt64>
    let received: [MessageBuffer<UInt64>]
    let voted: [MessageBuffer<UInt64>]
    let gathered: [MessageBuffer<UInt64>]

    init(_ plan: SegmentPlan) {
        let (ranks, chunk, planes) = (plan.ranks, plan.largestChunk, plan.resultPlanes)
        func pair(_ count: Int) -> [MessageBuffer<UInt64>] { (0..<2).map { _ in MessageBuffer(repeating: 0, count: count) } }
        self.ranks = ranks
        self.chunkCapacity = chunk
        self.inputPlanes = plan.inputPlanes
        self.planes = planes
        send = MessageBuffer(repeating: 0, count: plan.inputPlanes * plan.paddedWords)
        received = pair(plan.inputPlanes * ranks * chunk)
        voted = pair(planes * chunk)
        gathered = pair(ranks * planes * chunk)
    }

    func fits(_ plan: SegmentPlan) -> Bool {
        plan.ranks == ranks && plan.inputPlanes == inputPlanes && plan.resultPlanes == planes
            && plan.largestChunk <= chunkCapacity && plan.inputPlanes * plan.paddedWords <= send.count
    }
}
