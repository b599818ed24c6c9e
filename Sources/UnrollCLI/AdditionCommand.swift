import Foundation
import Graph
import Layers
import Train

/// Keras' addition_rnn example as an encoder–decoder: "535+61" in, "596" out, one character at a time.
enum AdditionCommand: Subcommand {
    static let name = "addition"
    static let abstract = "Learn to add numbers written as characters with an LSTM encoder-decoder (Keras' addition_rnn)."
    static let usage = "[OPTIONS]"
    static let discussion = """
        Questions such as "535+61" are padded with spaces to 2·digits+1 characters and reversed (as in Keras'
        example); answers are the sum padded to digits+1 characters. The encoder LSTM reads the question and its
        final (h, c) starts the decoder LSTM, which is trained with teacher forcing (it reads "=" and the
        answer's previous characters) and decoded greedily at test time, one character at a time with the state
        carried. The last line is the exact-match accuracy on held-out questions never seen in training.
        """
    static let options: [OptionSpecification] = [
        .option("digits", "N", "Largest number of digits of each operand (default 3)."),
        .option("samples", "N", "Distinct questions generated, 10% held out (default 50000)."),
        .option("epochs", "N", "Training epochs (default 30)."),
        .option("units", "N", "LSTM hidden size (default 128)."),
        .option("batch-size", "N", "Questions per step (default 64)."),
        .option("learning-rate", "RATE", "Adam's first learning rate, decayed linearly to a tenth by the last epoch (default 0.005)."),
        .option("seed", "N", "Seed for data, weights and shuffling (default 1)."),
        .flag("eager", "Run every training step eagerly (compile(jitCompile: false)); by default steps replay compiled plans."),
    ]

    static func run(_ arguments: Arguments, output: inout some TextOutputStream) throws {
        try arguments.expectPositionals(0...0, describing: "no positional arguments")
        let digits = try arguments.integer("digits", default: 3, in: 1...6)
        let task = AdditionTask(digits: digits)
        let samples = try arguments.integer("samples", default: 50_000, in: 20...1_000_000)
        guard samples <= task.distinctQuestions else {
            throw UsageError("option '--samples' is \(samples), but there are only \(task.distinctQuestions) distinct "
                             + "questions with \(digits) digit(s)", command: "unroll addition")
        }
        let epochs = try arguments.integer("epochs", default: 30, in: 1...100_000)
        let seed = try arguments.seed("seed", default: 1)
        let start = Date()
        let (train, heldOut) = task.questions(count: samples, seed: seed)
        print("Addition with up to \(digits) digit(s): \(train.count) training and \(heldOut.count) held-out questions.",
              to: &output)
        let model = try task.makeModel(hiddenSize: try arguments.integer("units", default: 128, in: 1...4_096), seed: seed)
        let learningRate: Float = try arguments.number("learning-rate", default: 0.005, in: 0...10, isOpenBelow: true)
        let optimizer = Adam(learningRate: learningRate, clipping: .byGlobalNorm(1))
        try model.model.compile(loss: .sparseCategoricalCrossEntropy(fromLogits: true), optimizer: optimizer,
                                jitCompile: !arguments.isSet("eager"))
        let (x, y) = task.arrays(train)
        let batchSize = try arguments.integer("batch-size", default: 64, in: 1...100_000)
        for epoch in 1...epochs {
            // A linear decay to a tenth: late epochs at the full rate undo what was learnt (accuracy swings by 10%).
            optimizer.learningRate = learningRate * (1 - 0.9 * Float(epoch - 1) / Float(max(epochs - 1, 1)))
            let history = try model.model.fit(x, y, epochs: 1, batchSize: batchSize, verbose: .silent, seed: seed &+ UInt64(epoch))
            guard let loss = history["loss"].first else {
                throw TrainingError.unsupported(history.stopReason ?? "training stopped at epoch \(epoch)")
            }
            let sample = Array(heldOut.prefix(500))
            print("  epoch \(epoch)/\(epochs)  loss \(String(format: "%.4f", loss))  held-out accuracy (500) "
                  + String(format: "%.3f", task.accuracy(of: model, on: sample)) + "  "
                  + String(format: "%.1f s", Date().timeIntervalSince(start)), to: &output)
        }
        for (a, b) in heldOut.prefix(5) {
            print("  \(a)+\(b) = \(task.answer(model, a, b))", to: &output)
        }
        let accuracy = task.accuracy(of: model, on: heldOut)
        print("Held-out exact-match accuracy: " + String(format: "%.4f", accuracy)
              + " (\(heldOut.count) questions, " + String(format: "%.1f s", Date().timeIntervalSince(start)) + ")", to: &output)
    }
}

/// The data and the model of the addition task.
struct AdditionTask {
    /// Digits, the plus sign, the padding space, and "=", the decoder's start symbol.
    static let alphabet = Array("0123456789+ =")
    let digits: Int

    var questionLength: Int { 2 * digits + 1 }
    var answerLength: Int { digits + 1 }
    var largest: Int { Int(pow(10, Double(digits))) - 1 }
    /// Unordered pairs `a ≤ b`: Keras' example skips a question it has seen in either order.
    var distinctQuestions: Int { (largest + 1) * (largest + 2) / 2 }

    /// The encoder, decoder and head, and the functional model that joins them for training.
    struct Network {
        let model: Model
        let encoder: LSTM
        let decoder: LSTM
        let head: Dense
    }

    /// Returns distinct questions `(a, b)` (operands of 1 to `digits` digits, as Keras draws them), the last
    /// 10% held out.
    func questions(count: Int, seed: UInt64) -> (train: [(Int, Int)], heldOut: [(Int, Int)]) {
        var generator = SeededGenerator(seed: seed)
        var seen = Set<Int>()
        var result: [(Int, Int)] = []
        func operand() -> Int {
            let length = 1 + generator.nextIndex(below: digits)
            return (0..<length).reduce(0) { value, _ in value * 10 + generator.nextIndex(below: 10) }
        }
        while result.count < count {
            let (a, b) = (operand(), operand())
            guard seen.insert(min(a, b) * (largest + 1) + max(a, b)).inserted else { continue }
            result.append((a, b))
        }
        let held = max(1, count / 10)
        return (Array(result.dropLast(held)), Array(result.suffix(held)))
    }

    /// The question's characters as the encoder reads them (padded, reversed).
    func encode(_ a: Int, _ b: Int) -> [Int] {
        let text = "\(a)+\(b)"
        return (text + String(repeating: " ", count: questionLength - text.count)).reversed().map(index)
    }

    /// The answer's characters, padded.
    func answerCharacters(_ a: Int, _ b: Int) -> [Int] {
        let text = "\(a + b)"
        return (text + String(repeating: " ", count: answerLength - text.count)).map(index)
    }

    func index(_ character: Character) -> Int { AdditionTask.alphabet.firstIndex(of: character)! }

    /// Encoder inputs, decoder inputs (teacher forcing: "=" then the answer shifted right) and target indices.
    func arrays(_ questions: [(Int, Int)]) -> (x: [Tensor], y: [Tensor]) {
        let symbols = AdditionTask.alphabet.count
        let answers = questions.map { answerCharacters($0.0, $0.1) }
        func indices(_ rows: [[Int]]) -> Tensor {
            Tensor(shape: [rows.count, rows.first?.count ?? 0], scalars: rows.flatMap { $0.map(Float.init) })
        }
        let source = indices(questions.map { encode($0.0, $0.1) }).oneHot(classes: symbols)
        let decoderInput = indices(answers.map { [index("=")] + $0.dropLast() }).oneHot(classes: symbols)
        let target = indices(answers)
        return ([source, decoderInput], [target])
    }

    func makeModel(hiddenSize: Int, seed: UInt64) throws -> Network {
        Initializers.resetSeedSequence(to: seed)
        let symbols = AdditionTask.alphabet.count
        let question = Input(shape: [questionLength, symbols]), previous = Input(shape: [answerLength, symbols])
        let encoder = LSTM(hiddenSize: hiddenSize), decoder = LSTM(hiddenSize: hiddenSize, returnSequences: true)
        let head = Dense(outputSize: symbols)
        let (_, h, c) = encoder(question)
        let logits = head(decoder(previous, initialState: [h, c]))
        return Network(model: try Model(inputs: [question, previous], outputs: [logits], name: "addition"),
                       encoder: encoder, decoder: decoder, head: head)
    }

    /// Greedy answers for a batch of questions: encode, then decode one character at a time from "=".
    func answers(_ network: Network, _ questions: [(Int, Int)]) -> [[Int]] {
        let source = arrays(questions).x[0]
        let (_, state) = network.encoder(Node(source), initialState: nil)
        var generator = SeededGenerator(seed: 0)
        let symbols = AdditionTask.alphabet.count
        return Decoding.decode(start: Array(repeating: index("="), count: questions.count), state: state,
                               steps: answerLength, strategy: .greedy, generator: &generator) { previous, state in
            let step = Tensor(shape: [previous.count, 1], scalars: previous.map(Float.init)).oneHot(classes: symbols)
            let (output, next) = network.decoder(Node(step), initialState: state)
            return (network.head(output).value, next)
        }
    }

    /// The decoded answer as text.
    func answer(_ network: Network, _ a: Int, _ b: Int) -> String {
        String(answers(network, [(a, b)])[0].map { AdditionTask.alphabet[$0] }).trimmingCharacters(in: .whitespaces)
    }

    /// The fraction of questions whose every answer character is right.
    func accuracy(of network: Network, on questions: [(Int, Int)]) -> Float {
        var correct = 0
        var start = 0
        while start < questions.count {
            let batch = Array(questions[start..<min(questions.count, start + 256)])
            for ((a, b), decoded) in zip(batch, answers(network, batch)) where decoded == answerCharacters(a, b) { correct += 1 }
            start += batch.count
        }
        return Float(correct) / Float(max(questions.count, 1))
    }
}
