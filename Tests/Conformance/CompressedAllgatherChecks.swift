import Collectives
import Training

/// Checks the compressed allgathers against what every rank can compute on its own.
struct CompressedAllgatherChecks {
    let harness: Harness
    var world: Communicator { harness.world }

    func runAll() {
        for length in conformanceSizes {
            for bits in [1, 2, 5, 32] { checkPackedCodes(length: length, bits: bits) }
            checkPackedSigns(length: length)
            checkSparse(length: length)
        }
        checkBadInput()
    }

    /// Rank `rank`'s codes of `bits` bits.
    func codes(rank: Int, length: Int, bits: Int) -> [UInt32] {
        var random = SplitMix64(seed: UInt64(rank * 31 + length * 7 + bits))
        return (0..<length).map { _ in bits == 32 ? UInt32(truncatingIfNeeded: random.next()) : UInt32(truncatingIfNeeded: random.next()) & ((1 << UInt32(bits)) - 1) }
    }

    func checkPackedCodes(length: Int, bits: Int) {
        let call = "allgather(PackedCodes) \(bits) bits"
        harness.run(call, size: length) {
            let comm = try world.duplicate()
            let gathered = try comm.allgather(PackedCodes(codes(rank: world.rank, length: length, bits: bits), bitsPerCode: bits))
            let expected = (0..<world.size).map { codes(rank: $0, length: length, bits: bits) }
            harness.expect(gathered.map(\.codes) == expected, call, size: length)
            let wire = (world.size - 1) * bits * ((length + 63) / 64) * 8
            harness.expect(comm.traffic.bytesSent == wire, "\(call) bytes", size: length, "\(comm.traffic.bytesSent) vs \(wire)")
        }
    }

    func checkPackedSigns(length: Int) {
        let call = "allgather(PackedSigns)"
        let values = { (rank: Int) -> [Float] in
            var random = SplitMix64(seed: UInt64(rank + 1000 * length))
            return (0..<length).map { _ in random.nonzeroFloat() }
        }
        harness.run(call, size: length) {
            let gathered = try world.allgather(PackedSigns(signsOf: values(world.rank)))
            let expected = (0..<world.size).map { rank in values(rank).map { Float($0 > 0 ? 1 : -1) } }
            harness.expect(gathered.map { $0.unpacked() } == expected, call, size: length)
        }
    }

    /// Rank r sends every (r+1)-th index of a `length`-long vector, so counts differ per rank.
    func checkSparse(length: Int) {
        let call = "allgather(SparseVector)"
        let sparse = { (rank: Int) -> SparseVector in
            let indices = stride(from: rank % max(1, length), to: length, by: rank + 1).map { UInt32($0) }
            return SparseVector(length: length, indices: indices, values: indices.map { Float($0) * 0.5 + Float(rank) })
        }
        harness.run(call, size: length) {
            let gathered = try world.allgather(sparse(world.rank))
            harness.expect(gathered == (0..<world.size).map(sparse), call, size: length)
        }
    }

    func checkBadInput() {
        let last = world.size - 1
        if world.size > 1 {
            let bits = world.rank == last ? 3 : 2
            harness.expectThrows("allgather(PackedCodes) mismatched widths", .mismatchAcrossRanks(
                call: "allgather(PackedCodes)", reason: "the bits per code ranges from 2 to 3 across ranks (this rank: \(bits))")) {
                _ = try world.allgather(PackedCodes(count: 100, bitsPerCode: bits))
            }
        }
        let expected: CollectiveError = world.rank == last
            ? .invalidArgument(call: "allgather(SparseVector)", reason: "index 10 is outside the vector's length 10")
            : .rejectedOnOtherRank(call: "allgather(SparseVector)", rank: last)
        harness.expectThrows("allgather(SparseVector) index out of range", expected) {
            let index: UInt32 = world.rank == last ? 10 : 3
            _ = try world.allgather(SparseVector(length: 10, indices: [index], values: [1]))
        }
    }
}
