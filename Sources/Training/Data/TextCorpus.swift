#if canImport(Glibc)
import Glibc
#endif

/// Plain text as character tokens, for language models: the files of a directory (Debian's
/// `fortunes` package by default), a vocabulary of the characters of the training text, and a
/// deterministic split — the last ``validationFraction`` of every file is validation text.
///
/// Files are read in name order; symbolic links, hidden files and `*.dat` files (the fortune
/// package's binary indexes) are skipped. Every file read must be UTF-8.
public struct TextCorpus: Sendable {
    /// Where Debian's `fortunes` package installs its text.
    public static let defaultDirectory = "/usr/share/games/fortunes"

    /// The characters of the training text, sorted by code point; a token is an index into it.
    public let vocabulary: [Unicode.Scalar]
    /// The training text, as tokens.
    public let training: [Int32]
    /// The validation text, as tokens; characters the training text lacks are left out.
    public let validation: [Int32]
    /// Validation characters left out because the training text lacks them.
    public let unknownInValidation: Int

    /// The share of each file that is validation text.
    public static let validationFraction = 0.1

    /// Reads the text files of `directory`; throws when it is missing, holds no text, holds a
    /// file that is not UTF-8, or has more than `maxVocabulary` distinct characters.
    public static func load(directory: String = defaultDirectory, maxVocabulary: Int = 256) throws -> TextCorpus {
        let hint = directory == defaultDirectory
            ? "Install the text with 'apt-get install fortunes', or point --data-dir at a directory of plain text files"
            : "Point --data-dir at a directory of plain text files (the default, \(defaultDirectory), comes with 'apt-get install fortunes')"
        guard let names = Files.names(in: directory) else {
            throw TrainingError.datasetMissing(path: directory, hint: hint)
        }
        var files: [(name: String, bytes: [UInt8])] = []
        for name in names.sorted() where !name.hasPrefix(".") && !name.hasSuffix(".dat") {
            let path = "\(directory)/\(name)"
            var status = stat()
            guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { continue }
            files.append((path, try Files.read(path) { TrainingError.textUnusable(path: path, reason: $0) }))
        }
        return try TextCorpus(files: files, maxVocabulary: maxVocabulary, directory: directory)
    }

    /// The corpus of `files` (name and bytes each), from `directory` (for messages).
    public init(files: [(name: String, bytes: [UInt8])], maxVocabulary: Int = 256, directory: String = "input") throws {
        var trainingText: [Unicode.Scalar] = []
        var validationText: [Unicode.Scalar] = []
        for file in files {
            var scalars: [Unicode.Scalar] = []
            var decoder = UTF8()
            var iterator = file.bytes.makeIterator()
            decoding: while true {
                switch decoder.decode(&iterator) {
                case .scalarValue(let scalar): scalars.append(scalar)
                case .emptyInput: break decoding
                case .error:
                    throw TrainingError.textUnusable(path: file.name, reason: "it is not UTF-8 text (after \(scalars.count) characters); text corpora must be plain UTF-8 files")
                }
            }
            let validationStart = scalars.count - Int(Double(scalars.count) * TextCorpus.validationFraction)
            trainingText += scalars[..<validationStart]
            validationText += scalars[validationStart...]
        }
        guard trainingText.count >= 2 else {
            throw TrainingError.textUnusable(path: directory, reason: "it holds \(trainingText.count) character(s) of training text in \(files.count) file(s); a language model needs text")
        }
        let vocabulary = Set(trainingText.map(\.value)).sorted().compactMap(Unicode.Scalar.init)
        guard vocabulary.count <= maxVocabulary else {
            throw TrainingError.textUnusable(path: directory, reason: "its training text has \(vocabulary.count) distinct characters, more than the vocabulary's \(maxVocabulary)")
        }
        var index: [Unicode.Scalar: Int32] = [:]
        for (token, scalar) in vocabulary.enumerated() { index[scalar] = Int32(token) }
        self.vocabulary = vocabulary
        training = trainingText.compactMap { index[$0] }
        validation = validationText.compactMap { index[$0] }
        unknownInValidation = validationText.count - validation.count
    }

    /// The text of `tokens`.
    public func text<Tokens: Sequence<Int32>>(_ tokens: Tokens) -> String {
        var text = String.UnicodeScalarView()
        for token in tokens where vocabulary.indices.contains(Int(token)) { text.append(vocabulary[Int(token)]) }
        return String(text)
    }
}
