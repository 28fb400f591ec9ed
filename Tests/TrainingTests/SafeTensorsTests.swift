import PropertyBased
import Testing
@testable import Training

/// The checkpoint format: what is written reads back, and no damaged input crashes.
@Suite struct SafeTensorsTests {
    let file = SafeTensors(tensors: [SafeTensors.Tensor(name: "layer0.weight", shape: [2, 3], values: [1, -2, 3.5, .pi, 0, -0]),
                                     SafeTensors.Tensor(name: "bias \"quoted\"", shape: [1], values: [.infinity])],
                           metadata: ["step": "120", "note": "line\nbreak"])

    @Test func roundTrips() throws {
        let bytes = file.encoded()
        let headerLength: Int = bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
        #expect((8 + headerLength) % 8 == 0)   // data 8-byte aligned
        let decoded = try SafeTensors(decoding: bytes, path: "f")
        #expect(decoded.metadata == file.metadata)
        #expect(decoded.tensors.map(\.name) == file.tensors.map(\.name))
        #expect(decoded.tensors.map(\.shape) == file.tensors.map(\.shape))
        #expect(zip(decoded.tensors, file.tensors).allSatisfy { $0.values.map(\.bitPattern) == $1.values.map(\.bitPattern) })
    }

    @Test func everyTruncationIsAnError() {
        let bytes = file.encoded()
        for length in 0..<bytes.count - 1 {
            #expect(throws: TrainingError.self) { try SafeTensors(decoding: Array(bytes[0..<length]), path: "f") }
        }
    }

    @Test func randomDamageNeverCrashes() async {
        let bytes = file.encoded()
        await propertyCheck(input: Gen.int(in: 0...(bytes.count - 1)), Gen.int(in: 0...255)) { position, value in
            var damaged = bytes
            damaged[position] = UInt8(value)
            _ = try? SafeTensors(decoding: damaged, path: "f")
        }
    }

    @Test func deepNestingIsRefused() {
        let header = Array(("{\"a\":" + String(repeating: "[", count: 100_000) + "}").utf8)
        var bytes = [UInt8](repeating: 0, count: 8)
        for index in 0..<8 { bytes[index] = UInt8(truncatingIfNeeded: header.count >> (8 * index)) }
        #expect(throws: TrainingError.self) { try SafeTensors(decoding: bytes + header, path: "f") }
    }
}
