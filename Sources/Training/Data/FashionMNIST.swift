import CZlib
#if canImport(Glibc)
import Glibc
#endif

/// Fashion-MNIST from the IDX files of Debian's `dataset-fashion-mnist` package (or any
/// directory holding the four `*-ubyte.gz` files), normalized to zero mean and unit variance.
public enum FashionMNIST {
    /// Where Debian's package installs the files.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    /// The mean and standard deviation of the training pixels scaled to [0, 1].
    static let mean: Float = 0.2860, standardDeviation: Float = 0.3530
    /// The images' rows and columns; each row of a loaded ``Dataset`` is one image, row-major.
    public static let imageHeight = 28, imageWidth = 28

    /// The training split (60 000 rows) or the test split (10 000 rows).
    public enum Split: String, Sendable {
        case train
        case test = "t10k"
    }

    /// Loads one split from `directory`.
    public static func load(_ split: Split, directory: String = defaultDirectory) throws -> Dataset {
        let imagePath = "\(directory)/\(split.rawValue)-images-idx3-ubyte.gz"
        let labelPath = "\(directory)/\(split.rawValue)-labels-idx1-ubyte.gz"
        let images = try IDXFile(path: imagePath)
        let labels = try IDXFile(path: labelPath)
        guard images.dimensions.count == 3, images.dimensions[1] == imageHeight, images.dimensions[2] == imageWidth else {
            throw TrainingError.datasetCorrupt(path: imagePath, reason: "expected n×28×28 images, found dimensions \(images.dimensions)")
        }
        guard labels.dimensions.count == 1, labels.dimensions[0] == images.dimensions[0] else {
            throw TrainingError.datasetCorrupt(path: labelPath, reason: "expected \(images.dimensions[0]) labels, found dimensions \(labels.dimensions)")
        }
        if let bad = labels.bytes.first(where: { $0 > 9 }) {
            throw TrainingError.datasetCorrupt(path: labelPath, reason: "label \(bad) is outside 0...9")
        }
        let features = images.bytes.map { (Float($0) / 255 - mean) / standardDeviation }
        return Dataset(features: features, labels: labels.bytes.map { Int32($0) }, featureCount: imageHeight * imageWidth, classes: 10)
    }
}

/// An IDX file (the MNIST format), gzip-compressed: a magic number naming the element type
/// (only unsigned bytes, 0x08, are read) and the dimension count, big-endian dimensions,
/// then the elements.
public struct IDXFile: Sendable {
    /// The sizes of the dimensions, outermost first.
    public let dimensions: [Int]
    /// The elements, row-major.
    public let bytes: [UInt8]

    /// Reads and decodes the gzip-compressed (or plain) IDX file at `path`.
    public init(path: String) throws {
        try self.init(decoding: IDXFile.gunzip(path: path), path: path)
    }

    /// Decodes the uncompressed bytes of an IDX file; `path` names it in errors. Throws
    /// ``TrainingError/datasetCorrupt(path:reason:)`` for anything but a consistent
    /// unsigned-byte IDX file.
    public init(decoding data: [UInt8], path: String) throws {
        guard data.count >= 4, data[0] == 0, data[1] == 0, data[2] == 0x08 else {
            throw TrainingError.datasetCorrupt(path: path, reason: "the magic number is not that of an unsigned-byte IDX file")
        }
        let rank = Int(data[3])
        let header = 4 + 4 * rank
        guard rank > 0, data.count >= header else {
            throw TrainingError.datasetCorrupt(path: path, reason: "the header is truncated")
        }
        dimensions = (0..<rank).map { d in
            (0..<4).reduce(0) { $0 << 8 | Int(data[4 + 4 * d + $1]) }
        }
        let (elements, overflow) = dimensions.reduce((1, false)) { partial, dimension in
            let (product, overflow) = partial.0.multipliedReportingOverflow(by: dimension)
            return (product, partial.1 || overflow)
        }
        guard !overflow else {
            throw TrainingError.datasetCorrupt(path: path, reason: "the header's dimensions \(dimensions) multiply to more elements than can be counted")
        }
        guard data.count - header == elements else {
            throw TrainingError.datasetCorrupt(path: path, reason: "the header promises \(elements) elements but the file holds \(data.count - header)")
        }
        bytes = Array(data[header...])
    }

    /// The decompressed contents of a gzip file.
    static func gunzip(path: String) throws -> [UInt8] {
        let hint = "Install Fashion-MNIST with 'apt-get install dataset-fashion-mnist', point --data-dir at a directory holding the four *-ubyte.gz files, or pass --synthetic"
        var status = stat()
        guard stat(path, &status) == 0 else { throw TrainingError.datasetMissing(path: path, hint: hint) }
        // A FIFO or a device would block or never end; only a regular file is read.
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw TrainingError.datasetCorrupt(path: path, reason: "it is not a regular file")
        }
        guard let file = gzopen(path, "rb") else { throw TrainingError.datasetMissing(path: path, hint: hint) }
        defer { gzclose(file) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let read = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if read < 0 {
                throw TrainingError.datasetCorrupt(path: path, reason: "the gzip stream is damaged")
            }
            if read == 0 { break }
            result.append(contentsOf: chunk[0..<Int(read)])
        }
        return result
    }
}
