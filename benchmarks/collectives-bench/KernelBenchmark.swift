import BenchmarkSupport
import Collectives

/// Pack and unpack throughput in floats per second, next to a plain SIMD read of the same
/// buffer in the same run, at a cache-resident size and at a large one.
struct KernelBenchmark {
    let repetitions: Int

    func run(counts: [Int]) throws {
        print("# kernels: median of \(repetitions) runs, one core, G floats/s (ratio to a plain read of the same buffer)")
        print("count".padded(10) + "read".padded(10) + "pack".padded(18) + "unpack".padded(18))
        for count in counts {
            var state: UInt64 = 1
            let input = (0..<count).map { _ -> Float in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int32(truncatingIfNeeded: state >> 32))
            }
            var output = [Float](repeating: 0, count: count)
            var signs = PackedSigns(count: count)
            var sink: Float = 0
            let read = try rate(count) { sink += input.withUnsafeBufferPointer(plainRead) }
            let pack = try rate(count) { input.withUnsafeBufferPointer { signs.pack(FloatSource($0)) } }
            let unpack = try rate(count) { output.withUnsafeMutableBufferPointer { signs.unpack(into: $0) } }
            print("\(count)".padded(10) + rounded(read, decimals: 3).padded(10)
                  + "\(rounded(pack, decimals: 3)) (\(rounded(pack / read, decimals: 3)))".padded(18)
                  + "\(rounded(unpack, decimals: 3)) (\(rounded(unpack / read, decimals: 3)))".padded(18) + (sink.isNaN ? " " : ""))
        }
    }

    /// G floats per second of `body` on `count` floats: the median of the repetitions.
    private func rate(_ count: Int, _ body: () -> Void) throws -> Double {
        body()
        var seconds: [Double] = []
        for _ in 0..<repetitions {
            let start = try MPI.wallTime()
            body()
            seconds.append(try MPI.wallTime() - start)
        }
        return Double(count) / median(seconds) / 1e9
    }
}

/// Sums a buffer 16 lanes at a time: the memory-read ceiling the kernels are compared with.
@inline(never)
func plainRead(_ values: UnsafeBufferPointer<Float>) -> Float {
    guard let base = values.baseAddress else { return 0 }
    let raw = UnsafeRawPointer(base)
    var sum = SIMD16<Float>()
    var index = 0
    while index + 16 <= values.count {
        sum += raw.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
        index += 16
    }
    return sum.sum()
}
