import Collectives
import Training
#if canImport(Glibc)
import Glibc
#endif

/// Counts checks on this rank, prints one line per failure, and totals them across ranks.
final class Harness {
    let world: Communicator
    private(set) var passed = 0
    private(set) var failed = 0

    init(world: Communicator) { self.world = world }

    /// Records one check; a failure prints a line naming rank, call and size.
    func expect(_ condition: Bool, _ call: String, size: Int? = nil, _ detail: @autoclosure () -> String = "") {
        if condition {
            passed += 1
        } else {
            failed += 1
            let sizeText = size.map { " size \($0)" } ?? ""
            let detailText = detail()
            print("FAIL rank \(world.rank): \(call)\(sizeText)\(detailText.isEmpty ? "" : ": " + detailText)")
            fflush(nil)
        }
    }

    /// Runs `body`, which must not throw; a thrown error is one failed check.
    func run(_ call: String, size: Int? = nil, _ body: () throws -> Void) {
        do { try body() } catch { expect(false, call, size: size, "threw \(error)") }
    }

    /// Checks that `body` throws `expected` on this rank.
    func expectThrows(_ call: String, _ expected: CollectiveError, _ body: () throws -> Void) {
        do {
            try body()
            expect(false, call, "did not throw; expected \(expected)")
        } catch let error as CollectiveError {
            expect(error == expected, call, "threw \(error); expected \(expected)")
        } catch {
            expect(false, call, "threw \(error); expected \(expected)")
        }
    }

    /// Totals passes and failures over every rank of `world`; rank 0 prints the closing line.
    /// Returns whether every check on every rank passed.
    func finish() throws -> Bool {
        let totals = try world.allreduce([Int64(passed), Int64(failed)], operation: .sum)
        if world.rank == 0 { print("\(totals[0]) passed, \(totals[1]) failed") }
        return totals[1] == 0
    }
}

/// Scalars the conformance checks generate from small non-negative integers.
protocol TestScalar: MPIScalar, Numeric, Comparable {
    init(_ value: Int)
}
extension Float: TestScalar {}
extension Double: TestScalar {}
extension Int32: TestScalar {}
extension Int64: TestScalar {}
extension UInt8: TestScalar {}
extension UInt32: TestScalar {}
extension UInt64: TestScalar {}

/// The value rank `rank` contributes at `index`: small, exact in every type, different per rank.
func contribution<T: TestScalar>(_ type: T.Type, rank: Int, index: Int) -> T {
    T((rank * 7 + index * 3) % 11)
}

/// The sizes every collective is checked at: empty, one, around a 64-bit word, and a large odd size.
let conformanceSizes = [0, 1, 63, 64, 65, 100_003]

/// Whether every rank of `world` holds exactly `values`: their elementwise max and min
/// across ranks (two `MPI_Allreduce`s) are equal, so every rank gets the same answer.
func identicalOnEveryRank<T: TestScalar>(_ values: [T], world: Communicator) throws -> Bool {
    try world.allreduce(values, operation: .max) == world.allreduce(values, operation: .min)
}

extension SplitMix64 {
    /// A float in [−1, 1), never exactly zero.
    mutating func nonzeroFloat() -> Float {
        let value = Float(Int32(truncatingIfNeeded: next() >> 32)) / Float(1 << 31)
        return value == 0 ? 0.5 : value
    }
}
