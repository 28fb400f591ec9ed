import Collectives
#if canImport(Glibc)
import Glibc
#endif

/// A safetensors file (the format of Hugging Face's `safetensors`, readable by PyTorch,
/// NumPy and JAX): an 8-byte little-endian header length, a JSON header naming each tensor's
/// dtype, shape and byte range, and the raw little-endian data. Only `F32` tensors are
/// written and read; `__metadata__` holds string pairs.
public struct SafeTensors: Equatable {
    /// A named float tensor.
    public struct Tensor: Equatable {
        /// Its name, for example `"layer0.weight"`.
        public var name: String
        /// Its shape, row-major.
        public var shape: [Int]
        /// Its values, `shape`'s product of them.
        public var values: [Float]

        /// A tensor of `values` in `shape`.
        public init(name: String, shape: [Int], values: [Float]) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// The tensors, in file order.
    public var tensors: [Tensor]
    /// The header's `__metadata__`.
    public var metadata: [String: String]

    /// A file of `tensors` and `metadata`.
    public init(tensors: [Tensor], metadata: [String: String]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor named `name`.
    public subscript(name: String) -> Tensor? { tensors.first { $0.name == name } }

    /// The file's bytes.
    public func encoded() -> [UInt8] {
        var entries = [#""__metadata__":{"# + metadata.sorted { $0.key < $1.key }
            .map { "\(jsonString($0.key)):\(jsonString($0.value))" }.joined(separator: ",") + "}"]
        var offset = 0
        for tensor in tensors {
            let bytes = tensor.values.count * 4
            entries.append("\(jsonString(tensor.name)):{\"dtype\":\"F32\",\"shape\":[\(tensor.shape.map(String.init).joined(separator: ","))],"
                           + "\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        while (header.count + 8) % 8 != 0 { header.append(0x20) }  // data 8-byte aligned, as the reference writer does
        var file = [UInt8]()
        file.reserveCapacity(8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(contentsOf: header)
        for tensor in tensors {
            #if _endian(little)
            tensor.values.withUnsafeBytes { file.append(contentsOf: $0) }
            #else
            for value in tensor.values { withUnsafeBytes(of: value.bitPattern.littleEndian) { file.append(contentsOf: $0) } }
            #endif
        }
        return file
    }

    /// Parses a file's bytes; `path` names it in errors. Every size the header claims is
    /// checked against the file before it is used.
    public init(decoding bytes: [UInt8], path: String) throws {
        func corrupt(_ reason: String) -> TrainingError { .checkpointCorrupt(path: path, reason: reason) }
        guard bytes.count >= 8 else { throw corrupt("it is \(bytes.count) bytes long, shorter than the 8-byte header length") }
        let headerLength = bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw corrupt("the header claims \(headerLength) bytes but the file holds \(bytes.count - 8) after the length")
        }
        let dataStart = 8 + Int(headerLength)
        var parser = JSONParser(bytes: bytes[8..<dataStart])
        guard case .object(let entries) = try parser.parseDocument() else { throw corrupt("the header is not a JSON object") }
        var tensors: [(start: Int, tensor: Tensor)] = []
        var metadata: [String: String] = [:]
        for (name, value) in entries {
            if name == "__metadata__" {
                guard case .object(let pairs) = value else { throw corrupt("__metadata__ is not an object") }
                for (key, item) in pairs {
                    guard case .string(let text) = item else { throw corrupt("metadata \(key) is not a string") }
                    metadata[key] = text
                }
                continue
            }
            guard case .object(let fields) = value, let dtype = fields.first(where: { $0.0 == "dtype" })?.1,
                  let shapeValue = fields.first(where: { $0.0 == "shape" })?.1,
                  let offsetsValue = fields.first(where: { $0.0 == "data_offsets" })?.1,
                  case .string(let type) = dtype, case .array(let shapeItems) = shapeValue, case .array(let offsetItems) = offsetsValue
            else { throw corrupt("tensor \(name) lacks dtype, shape or data_offsets") }
            guard type == "F32" else { throw corrupt("tensor \(name) is \(type); only F32 is read") }
            let shape = try shapeItems.map { item -> Int in
                guard case .integer(let dimension) = item, dimension >= 0 else { throw corrupt("tensor \(name) has a bad shape") }
                return dimension
            }
            guard offsetItems.count == 2, case .integer(let start) = offsetItems[0], case .integer(let end) = offsetItems[1],
                  start >= 0, start <= end, end <= bytes.count - dataStart, (end - start) % 4 == 0 else {
                throw corrupt("tensor \(name)'s data_offsets lie outside the file's \(bytes.count - dataStart) data bytes")
            }
            let (elements, overflow) = shape.reduce((1, false)) { partial, dimension in
                let (product, overflow) = partial.0.multipliedReportingOverflow(by: dimension)
                return (product, partial.1 || overflow)
            }
            guard !overflow, elements == (end - start) / 4 else {
                throw corrupt("tensor \(name)'s shape \(shape) does not match its \(end - start) bytes")
            }
            let values = (0..<elements).map { index -> Float in
                let at = dataStart + start + 4 * index
                return Float(bitPattern: UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24)
            }
            tensors.append((start, Tensor(name: name, shape: shape, values: values)))
        }
        self.tensors = tensors.sorted { $0.start < $1.start }.map(\.tensor)
        self.metadata = metadata
    }
}
