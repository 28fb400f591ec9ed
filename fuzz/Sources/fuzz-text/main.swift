// The text-corpus reader: any bytes (split into files at each 0x00) build a corpus or throw,
// never trap; a corpus's tokens are all inside its vocabulary.
import FuzzDriver
import Training

fuzz { data, size in
    let files = bytes(data, size).split(separator: 0, omittingEmptySubsequences: false).enumerated().map { ("file\($0)", Array($1)) }
    guard let corpus = try? TextCorpus(files: files, maxVocabulary: 64) else { return 0 }
    let tokens = 0..<Int32(corpus.vocabulary.count)
    precondition(corpus.training.allSatisfy(tokens.contains) && corpus.validation.allSatisfy(tokens.contains))
    return 0
}
