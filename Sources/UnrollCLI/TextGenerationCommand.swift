import Foundation
import Graph
import Layers
import Serialization
import Train

/// A character-level language model on the embedded text, then sampling from it one character at a time:
/// the course's one-to-many example.
enum TextGenerationCommand: Subcommand {
    static let name = "textgen"
    static let abstract = "Train a character-level LSTM on a text and generate from it, or generate from a saved one."
    static let usage = "[OPTIONS]"
    static let discussion = """
        The corpus is the opening of Alice's Adventures in Wonderland (public domain, embedded), lower-cased, or the
        file given by --text. --save DIR writes the trained model as a model directory with its vocabulary
        (vocabulary.json); --load DIR generates from such a directory without training.
        Training: one-hot characters -> LSTM (every step's output) -> Dense(vocabulary) logits, sparse
        categorical cross-entropy on the next character at every step. Generation runs the seed text through
        the network, then repeatedly samples a character from softmax(logits / temperature) and feeds it back,
        carrying the LSTM state from step to step.
        """
    static let options: [OptionSpecification] = [
        .option("epochs", "N", "Training epochs (default 12)."),
        .option("units", "N", "LSTM hidden size (default 128)."),
        .option("sequence-length", "N", "Characters per training sequence (default 40)."),
        .option("batch-size", "N", "Sequences per step (default 32)."),
        .option("learning-rate", "RATE", "Adam's learning rate (default 0.01)."),
        .option("seed-text", "TEXT", "Text to start from (default \"alice was \")."),
        .option("length", "N", "Characters to generate (default 300)."),
        .option("temperature", "T", "Sampling temperature; lower is more conservative (default 0.5)."),
        .option("seed", "N", "Seed for weights, shuffling and sampling (default 1)."),
        .option("text", "FILE", "Train on this UTF-8 text file instead of the embedded one (lower-cased, spaces collapsed)."),
        .option("save", "DIR", "After training, save the model (a model directory with its vocabulary) to DIR."),
        .option("load", "DIR", "Generate from a model saved by --save instead of training one."),
    ]

    /// The corpus as the model sees it: lower-cased, every run of white space one space.
    static var corpus: String { normalized(EmbeddedData.aliceOpening) }

    /// Lower-cases a text and makes every run of white space one space.
    static func normalized(_ text: String) -> String {
        text.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    /// The file beside the model in a saved directory that holds the vocabulary: `{"vocabulary": "abc..."}`.
    static let vocabularyFileName = "vocabulary.json"

    /// Writes the model as a model directory (`Sequential.save`), with its vocabulary in `vocabulary.json`, all in
    /// one atomic save.
    static func save(_ model: CharacterModel, to url: URL) throws {
        let vocabulary = JSON.object(JSONObject(["vocabulary": .string(String(model.vocabulary))]))
        try Sequential([model.recurrent, model.head], name: "character_model")
            .save(to: url, additionalFiles: [(vocabularyFileName, Data(vocabulary.serialized().utf8))])
    }

    /// Reads a model written by ``save(_:to:)``.
    static func load(from url: URL) throws -> CharacterModel {
        let (model, files) = try Sequential.load(from: url, additionalFiles: [vocabularyFileName])
        func notTextgen(_ reason: String) -> UsageError {
            UsageError("option '--load': \(url.path) is not a textgen model: \(reason)", command: "unroll textgen")
        }
        let vocabulary: [Character]
        do {
            vocabulary = Array(try JSON.parse(files[vocabularyFileName] ?? Data()).field("vocabulary").string())
        } catch let error as JSONError {
            throw notTextgen("\(vocabularyFileName): \(error)")
        }
        guard !vocabulary.isEmpty, model.layers.count == 2, let recurrent = model.layers[0] as? LSTM, recurrent.returnSequences,
              let head = model.layers[1] as? Dense, head.outputSize == vocabulary.count, head.activation == .linear,
              model.inputShape?.last == vocabulary.count else {
            throw notTextgen("expected LSTM(returnSequences) -> Dense(linear) over a vocabulary of \(vocabulary.count), got "
                             + model.layers.map(\.typeName).joined(separator: " -> "))
        }
        return CharacterModel(vocabulary: vocabulary, recurrent: recurrent, head: head, losses: [])
    }

    /// A trained model and its vocabulary.
    struct CharacterModel {
        let vocabulary: [Character]
        let recurrent: LSTM
        let head: Dense
        let losses: [Float]

        /// Returns `length` characters sampled after `seedText` at `temperature`, with `generator`.
        func generate(after seedText: String, length: Int, temperature: Float,
                      generator: inout SeededGenerator) throws -> String {
            let indices = try seedText.map { character in
                guard let index = vocabulary.firstIndex(of: character) else {
                    throw UsageError("option '--seed-text' holds '\(character)', which is not in the text's "
                                     + "vocabulary: \"\(String(vocabulary))\"", command: "unroll textgen")
                }
                return index
            }
            var (sequence, state) = recurrent(Node(oneHot(indices, vocabularySize: vocabulary.count)), initialState: nil)
            var generated = ""
            for _ in 0..<length {
                let last = sequence.slice(along: 1, (sequence.shape[1] - 1)..<sequence.shape[1])
                    .reshaped(to: [1, recurrent.cell.hiddenSize])
                let next = sample(logits: head(last).value.scalars, temperature: temperature, generator: &generator)
                generated.append(vocabulary[next])
                (sequence, state) = recurrent(Node(oneHot([next], vocabularySize: vocabulary.count)), initialState: state)
            }
            return generated
        }
    }

    /// Returns `[1, indices.count, vocabularySize]` one-hot rows.
    static func oneHot(_ indices: [Int], vocabularySize: Int) -> Tensor {
        Tensor(shape: [1, indices.count], scalars: indices.map(Float.init)).oneHot(classes: vocabularySize)
    }

    /// Returns an index drawn from `softmax(logits / temperature)` (the library's ``Decoding`` strategy); as the
    /// temperature nears 0 this becomes the most likely index (greedy sampling).
    static func sample(logits: [Float], temperature: Float, generator: inout SeededGenerator) -> Int {
        Decoding.choose(fromLogits: Tensor(shape: [1, logits.count], scalars: logits), strategy: .temperature(temperature),
                        generator: &generator)[0]
    }

    /// Trains a character model on `text`, calling `progress(epoch, loss)` after each epoch.
    static func train(on text: String, hiddenSize: Int, sequenceLength: Int, batchSize: Int, learningRate: Float,
                      epochs: Int, seed: UInt64, progress: (Int, Float) -> Void) throws -> CharacterModel {
        let vocabulary = Array(Set(text)).sorted()
        let lookup = Dictionary(uniqueKeysWithValues: vocabulary.enumerated().map { ($1, $0) })
        let codes = text.map { lookup[$0]! }
        guard codes.count > sequenceLength + 1 else {
            throw UsageError("option '--sequence-length' is \(sequenceLength), but the text has only \(codes.count) "
                             + "characters", command: "unroll textgen")
        }
        // Sequences start every few characters: overlapping enough to see each context several times,
        // few enough that an epoch stays short.
        let starts = Array(stride(from: 0, to: codes.count - sequenceLength - 1, by: 3))
        let series = Tensor(codes.map(Float.init))
        let windows = series.windows(length: sequenceLength + 1, stride: 3).slice(along: 0, 0..<starts.count)
        let inputs = windows.slice(along: 1, 0..<sequenceLength).oneHot(classes: vocabulary.count)
        let targets = windows.slice(along: 1, 1..<(sequenceLength + 1))
        Initializers.resetSeedSequence(to: seed)
        let recurrent = LSTM(hiddenSize: hiddenSize, inputShape: [sequenceLength, vocabulary.count], returnSequences: true)
        let head = Dense(outputSize: vocabulary.count)
        let model = Sequential([recurrent, head], name: "character_model")
        try model.compile(loss: .sparseCategoricalCrossEntropy(fromLogits: true),
                          optimizer: Adam(learningRate: learningRate, clipping: .byGlobalNorm(5)))
        var losses: [Float] = []
        for epoch in 1...epochs {
            let history = try model.fit(inputs, targets, epochs: 1, batchSize: batchSize, verbose: .silent,
                                        seed: seed &+ UInt64(epoch))
            guard let loss = history["loss"].first else {
                throw TrainingError.unsupported(history.stopReason ?? "training stopped at epoch \(epoch)")
            }
            losses.append(loss)
            progress(epoch, loss)
        }
        return CharacterModel(vocabulary: vocabulary, recurrent: recurrent, head: head, losses: losses)
    }

    static func run(_ arguments: Arguments, output: inout some TextOutputStream) throws {
        try arguments.expectPositionals(0...0, describing: "no positional arguments")
        let epochs = try arguments.integer("epochs", default: 12, in: 1...100_000)
        let seedText = (arguments.string("seed-text") ?? "alice was ").lowercased()
        guard !seedText.isEmpty else {
            throw UsageError("option '--seed-text' expects at least one character, got ''", command: "unroll textgen")
        }
        let length = try arguments.integer("length", default: 300, in: 0...1_000_000)
        let temperature: Float = try arguments.number("temperature", default: 0.5, in: 0...100, isOpenBelow: true)
        let seed = try arguments.seed("seed", default: 1)
        let model: CharacterModel
        if let path = arguments.string("load") {
            model = try load(from: URL(fileURLWithPath: path))
            print("Loaded a model of \(model.recurrent.cell.hiddenSize) units over \(model.vocabulary.count) characters "
                  + "from \(path).", to: &output)
        } else {
            let text: String
            if let path = arguments.string("text") {
                guard let contents = try? String(contentsOf: URL(fileURLWithPath: path), encoding: .utf8) else {
                    throw UsageError("option '--text': cannot read \(path) as UTF-8 text", command: "unroll textgen")
                }
                text = normalized(contents)
                print("Corpus: \(text.count) characters of \(path), \(Set(text).count) distinct.", to: &output)
            } else {
                text = corpus
                print("Corpus: \(text.count) characters of Alice's Adventures in Wonderland, \(Set(text).count) distinct.",
                      to: &output)
            }
            let start = Date()
            model = try train(on: text,
                              hiddenSize: try arguments.integer("units", default: 128, in: 1...4_096),
                              sequenceLength: try arguments.integer("sequence-length", default: 40, in: 1...10_000),
                              batchSize: try arguments.integer("batch-size", default: 32, in: 1...100_000),
                              learningRate: try arguments.number("learning-rate", default: 0.01, in: 0...10, isOpenBelow: true),
                              epochs: epochs, seed: seed) { epoch, loss in
                print("  epoch \(epoch)/\(epochs)  loss \(String(format: "%.4f", loss))  "
                      + String(format: "%.1f s", Date().timeIntervalSince(start)), to: &output)
            }
            if let path = arguments.string("save") {
                try save(model, to: URL(fileURLWithPath: path))
                print("Saved to \(path).", to: &output)
            }
        }
        var generator = SeededGenerator(seed: seed)
        let generated = try model.generate(after: seedText, length: length, temperature: temperature, generator: &generator)
        print("", to: &output)
        print("Generated (temperature \(temperature)):", to: &output)
        print(seedText + generated, to: &output)
    }
}
