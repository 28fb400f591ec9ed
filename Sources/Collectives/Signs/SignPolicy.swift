/// What an input coordinate with no sign — an exact zero (either sign of zero) or a NaN —
/// votes, when one bit must say +1 or −1.
///
/// Lion's sign(0) is 0, which one bit cannot say. A fixed direction (`positive`) pushes every
/// coordinate whose gradient and momentum are exactly zero (dead units, unused embedding
/// rows) by η in that direction on every step; a fair coin (`random`) is unbiased: in
/// expectation such a coordinate does not move. NaN carries no sign either, so it is treated
/// the same way (the training layer rejects non-finite gradients before they get here).
/// ±Inf has a sign and votes it.
public enum ZeroSignPolicy: Sendable, Equatable {
    /// Votes +1 or −1 with probability ½ each, from a counter-based generator: reproducible
    /// for a seed, different on every rank, call and coordinate. The default.
    case random
    /// Votes +1, as DeepSpeed's 1-bit compression and signSGD do: biased, slightly cheaper.
    case positive
}

/// How majority vote resolves a tie, which happens only with an even number of ranks
/// (Σδ = 0: for random signs at N = 16, about one coordinate in five).
public enum TiePolicy: Sendable, Equatable {
    /// The rank that owns the coordinate's chunk flips a fair coin (seeded and reproducible),
    /// so every rank receives the same bit and the return path stays at one bit. The default.
    case randomTieBreak
    /// The result is 0 (the paper's sign(0) = 0): exact, at the cost of a second bit plane
    /// on the way back when the number of ranks is even.
    case zero
}

/// How the ±1 votes of the ranks are combined.
public enum SignReduction: Sendable, Equatable, CustomStringConvertible {
    /// sign(Σδ): one bit back per coordinate (two with ties kept as zero).
    case majorityVote(TiePolicy)
    /// (1/N)·Σδ: the count of +1 votes comes back, ⌈log2(N+1)⌉ bits per coordinate.
    case average
    /// (1/N)·Σ sign(x) with sign(0) = 0, exactly: each coordinate goes out as two bits
    /// (positive; not negative), the owner counts both over the N ranks, c = P + (N − M) =
    /// Σ sign + N ∈ [0, 2N], and c comes back in ⌈log2(2N+1)⌉ bits. TernGrad's sum of
    /// ternary codes travels this way. The ``ZeroSignPolicy`` does not apply: ±0 and NaN
    /// are 0.
    case ternaryAverage

    /// Majority vote with the default unbiased tie-break.
    public static let majorityVote = SignReduction.majorityVote(.randomTieBreak)

    /// The number of bit planes each coordinate's input needs on the way out: 2 for
    /// ``ternaryAverage``, else 1.
    public var inputPlanes: Int { self == .ternaryAverage ? 2 : 1 }

    /// The number of bit planes each coordinate's result needs on the way back.
    public func resultPlanes(ranks: Int) -> Int {
        switch self {
        case .majorityVote(.randomTieBreak): return 1
        case .majorityVote(.zero): return ranks % 2 == 0 ? 2 : 1
        case .average: return countPlanes(ranks: ranks)
        case .ternaryAverage: return countPlanes(ranks: 2 * ranks)
        }
    }

    /// Bits needed to count 0…`ranks` votes: ⌈log2(ranks + 1)⌉.
    public func countPlanes(ranks: Int) -> Int { max(1, Int.bitWidth - ranks.leadingZeroBitCount) }

    var code: Int {
        switch self {
        case .majorityVote(.randomTieBreak): return 1
        case .majorityVote(.zero): return 2
        case .average: return 3
        case .ternaryAverage: return 4
        }
    }

    public var description: String {
        switch self {
        case .majorityVote(.randomTieBreak): return "majority vote (random tie-break)"
        case .majorityVote(.zero): return "majority vote (ties zero)"
        case .average: return "average"
        case .ternaryAverage: return "ternary average"
        }
    }
}

/// What a sign allreduce does when some rank's source holds a NaN or an infinity.
public enum NonFiniteInput: Sendable, Equatable {
    /// Such values vote like any other: a NaN as the ``ZeroSignPolicy`` says, ±Inf its sign.
    /// The default; it costs nothing.
    case vote
    /// The call is skipped on every rank: no rank writes its sink, and
    /// ``SignAllreduce/allreduce(_:into:nonFinite:)`` returns `false` everywhere. The check
    /// rides in the pack (no extra pass over memory) and the verdict costs one 4-byte
    /// `MPI_Allreduce`. The values checked are those
    /// the source's ``SignSource/finish(_:valid:)`` returns (Distributed Lion's: its new momentum).
    case skip

    var code: Int { self == .vote ? 1 : 2 }
}
