import Testing
import Training

/// The text corpus: vocabulary, split and every kind of bad text.
@Suite struct TextCorpusTests {
    @Test func splitsEachFileAndBuildsTheVocabularyFromTrainingText() throws {
        let corpus = try TextCorpus(files: [("a", Array("abcabcabcz".utf8)), ("b", Array("ccccccccca".utf8))])
        // The last 10 % of each file is validation text: "z" and "a".
        #expect(corpus.vocabulary == ["a", "b", "c"])
        #expect(corpus.text(corpus.training) == "abcabcabc" + "ccccccccc")
        #expect(corpus.text(corpus.validation) == "a" && corpus.unknownInValidation == 1)
    }

    @Test func refusesTextThatIsNotUTF8() {
        #expect(throws: TrainingError.textUnusable(path: "bad", reason: "it is not UTF-8 text (after 2 characters); text corpora must be plain UTF-8 files")) {
            try TextCorpus(files: [("bad", [0x68, 0x69, 0xFF, 0x21])])
        }
    }

    @Test func refusesAnEmptyCorpusAndAVocabularyThatDoesNotFit() {
        #expect(throws: TrainingError.self) { try TextCorpus(files: [("empty", [])]) }
        #expect(throws: TrainingError.self) { try TextCorpus(files: []) }
        let manyCharacters = (0x41..<0x41 + 300).compactMap(Unicode.Scalar.init).map(String.init).joined()
        #expect(throws: TrainingError.self) { try TextCorpus(files: [("wide", Array(manyCharacters.utf8))], maxVocabulary: 256) }
    }

    @Test func readsTheFortunesPackage() throws {
        let corpus = try TextCorpus.load()
        #expect(corpus.training.count > 2_000_000 && corpus.vocabulary.count <= 256)
        let share = Double(corpus.validation.count) / Double(corpus.training.count + corpus.validation.count)
        #expect(share > 0.09 && share < 0.11)
        #expect(corpus.text(corpus.training.prefix(2000)).contains(" the "))
    }

    @Test func saysWhereToGetMissingText() {
        #expect(throws: TrainingError.datasetMissing(path: "/nonexistent", hint: "Point --data-dir at a directory of plain text files (the default, /usr/share/games/fortunes, comes with 'apt-get install fortunes')")) {
            try TextCorpus.load(directory: "/nonexistent")
        }
    }
}
