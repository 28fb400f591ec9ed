@testable import Collectives

/// Plain scalar versions of the kernels, one coordinate at a time: what the fast kernels
/// must agree with.
enum ScalarReference {
    /// +1 (true), −1 (false), or nil for no sign (±0, NaN).
    static func sign(_ value: Float) -> Bool? {
        if value > 0 { return true }
        if value < 0 { return false }
        return nil
    }

    /// The bits of a packed vector, coordinate by coordinate.
    static func bits(_ words: [UInt64], count: Int) -> [Bool] {
        (0..<count).map { words[$0 / 64] >> UInt64($0 % 64) & 1 == 1 }
    }

    /// The number of +1 votes for each coordinate of `rows` (each `chunkWords` long).
    static func counts(rows: [UInt64], ranks: Int, chunkWords: Int) -> [Int] {
        (0..<chunkWords * 64).map { coordinate in
            (0..<ranks).filter { rows[$0 * chunkWords + coordinate / 64] >> UInt64(coordinate % 64) & 1 == 1 }.count
        }
    }
}

/// Values that exercise every sign case: ordinary, ±0, NaN, ±Inf, denormals.
let awkwardFloats: [Float] = [0, -0.0, .nan, -.nan, .infinity, -.infinity, .leastNonzeroMagnitude,
                              -.leastNonzeroMagnitude, 1, -1, 3.5e38, -2.5e-30]
