/// Loads and stores of 16 floats at a time with a partial final group, so that element-wise
/// kernels have one body for the whole vector and compile to SIMD on any target.
enum Lanes {
    /// The `valid` (1…16) floats at `pointer`, zeros after them.
    @inline(__always)
    static func load(_ pointer: UnsafePointer<Float>, _ valid: Int) -> SIMD16<Float> {
        if valid == 16 { return UnsafeRawPointer(pointer).loadUnaligned(as: SIMD16<Float>.self) }
        var lanes = SIMD16<Float>(repeating: 0)
        for lane in 0..<valid { lanes[lane] = pointer[lane] }
        return lanes
    }

    /// Stores the first `valid` (1…16) lanes of `lanes` at `pointer`.
    @inline(__always)
    static func store(_ lanes: SIMD16<Float>, _ pointer: UnsafeMutablePointer<Float>, _ valid: Int) {
        if valid == 16 {
            UnsafeMutableRawPointer(pointer).storeBytes(of: lanes, as: SIMD16<Float>.self)
            return
        }
        for lane in 0..<valid { pointer[lane] = lanes[lane] }
    }

    /// sign(x) lane by lane: +1, −1, or 0 for ±0, from the float bits (no mask selects,
    /// which lower to lane-by-lane loops on baseline x86-64).
    @inline(__always)
    static func sign(_ values: SIMD16<Float>) -> SIMD16<Float> {
        let bits = unsafeBitCast(values, to: SIMD16<Int32>.self)
        let one = (bits & Int32(bitPattern: 0x8000_0000)) | 0x3F80_0000
        let nonzero = (0 &- (bits & 0x7FFF_FFFF)) &>> 31
        return unsafeBitCast(one & nonzero, to: SIMD16<Float>.self)
    }
}
