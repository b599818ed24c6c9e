import Graph
import Layers
import TestSupport
import Train
import XCTest

/// Functional models train and predict through compiled plans (`compile(..., jitCompile: true)`, the default),
/// cached per input and target shapes, as `Sequential` does; steps a plan would freeze fall back to eager.
final class FunctionalCompilationTests: XCTestCase {
    /// 36 windows of a noisy ramp and the quarter of each as a one-hot second input.
    func twoInputData() -> (x: [Tensor], y: [Tensor]) {
        let samples = 36, steps = 4
        let series: [Float] = (0..<(samples + steps)).map { t in
            let noise = Float((t * 7) % 5) / 5
            return 0.1 + 0.02 * Float(t) + 0.03 * noise
        }
        let windows = Tensor(shape: [samples, steps, 1], scalars: (0..<samples).flatMap { Array(series[$0..<($0 + steps)]) })
        let quarters = Tensor(shape: [samples, 4], scalars: (0..<samples).flatMap { s -> [Float] in (0..<4).map { s % 4 == $0 ? 1 : 0 } })
        let targets = Tensor(shape: [samples, 1], scalars: (0..<samples).map { s -> Float in series[s + steps] + 0.05 * Float(s % 4) })
        return ([windows, quarters], [targets])
    }

    func twoInputModel(jitCompile: Bool) throws -> Model {
        let series = Input(shape: [4, 1]), quarter = Input(shape: [4])
        let joined = Concatenate()([LSTM(hiddenSize: 8, seed: 1)(series), quarter])
        let model = try Model(inputs: [series, quarter], outputs: [Dense(outputSize: 1, seed: 2)(joined)])
        try model.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.01), metrics: [.meanAbsoluteError],
                          jitCompile: jitCompile)
        return model
    }

    /// Keras' addition_rnn shape, small: an encoder's final state starts the decoder (teacher forcing).
    func seq2seq(jitCompile: Bool) throws -> Model {
        let encoderInputs = Input(shape: [5, 6]), decoderInputs = Input(shape: [3, 6])
        let (_, h, c) = LSTM(hiddenSize: 10, seed: 3)(encoderInputs)
        let decoded = LSTM(hiddenSize: 10, returnSequences: true, seed: 4)(decoderInputs, initialState: [h, c])
        let model = try Model(inputs: [encoderInputs, decoderInputs], outputs: [Dense(outputSize: 6, activation: .softmax, seed: 5)(decoded)])
        try model.compile(loss: .categoricalCrossEntropy(), optimizer: Adam(learningRate: 0.02), metrics: [.accuracy], jitCompile: jitCompile)
        return model
    }

    func oneHot(_ indices: [Int], shape: [Int]) -> Tensor {
        let classes = shape.last!
        return Tensor(shape: shape, scalars: indices.flatMap { index in (0..<classes).map { Float($0 == index ? 1 : 0) } })
    }

    /// 20 sequences of symbols; the decoder reads the encoder's sequence reversed and predicts its next symbol.
    func seq2seqData() -> (x: [Tensor], y: [Tensor]) {
        let samples = 20
        let encoder = (0..<(samples * 5)).map { ($0 * 7 + $0 / 5) % 6 }
        let decoder = (0..<samples).flatMap { s in (0..<3).map { encoder[s * 5 + 4 - $0] } }
        let target = (0..<samples).flatMap { s in (0..<3).map { encoder[s * 5 + 3 - $0] } }
        return ([oneHot(encoder, shape: [samples, 5, 6]), oneHot(decoder, shape: [samples, 3, 6])],
                [oneHot(target, shape: [samples, 3, 6])])
    }

    func assertFollowsEager(_ make: (Bool) throws -> Model, data: (x: [Tensor], y: [Tensor]), batchSize: Int, epochs: Int,
                            fullShapes: [[Int]], partialShapes: [[Int]], _ label: String) throws {
        let eager = try make(false), compiled = try make(true)
        XCTAssertEqual(eager.weights.map(\.scalars), compiled.weights.map(\.scalars), "\(label): different starting weights")
        let expected = try eager.fit(data.x, data.y, epochs: epochs, batchSize: batchSize, validationSplit: 0.1, verbose: .silent, seed: 7)
        let history = try compiled.fit(data.x, data.y, epochs: epochs, batchSize: batchSize, validationSplit: 0.1, verbose: .silent, seed: 7)
        let inputs = fullShapes.count - data.y.count
        func plan(_ model: Model, _ shapes: [[Int]]) -> Plan? {
            model.compiledTrainingPlan(inputShapes: Array(shapes[..<inputs]), targetShapes: Array(shapes[inputs...]))
        }
        XCTAssertNil(plan(eager, fullShapes), "\(label): the eager model compiled")
        XCTAssertNotNil(plan(compiled, fullShapes), "\(label): no plan for full batches")
        XCTAssertNotNil(plan(compiled, partialShapes), "\(label): no plan of its own for the last, partial batch")
        XCTAssertEqual(Set(history.values.keys), Set(expected.values.keys))
        for (key, values) in expected.values {
            let actual = history.values[key]!
            XCTAssertEqual(actual.count, epochs, "\(label) \(key)")
            for (epoch, (a, e)) in zip(actual, values).enumerated() {
                XCTAssertEqual(a, e, accuracy: 1e-5 * max(abs(e), 1e-6), "\(label) \(key) at epoch \(epoch + 1)")
            }
        }
        XCTAssertLessThan(history["loss"].last!, history["loss"].first! * 0.7, "\(label): compiled training did not learn")
        for (a, e) in zip(compiled.weights, eager.weights) { assertClose(a, e, tolerance: 1e-4, "\(label) weights") }
        let predicted = try compiled.predict(data.x, batchSize: 8), again = try compiled.predict(data.x, batchSize: 8)
        let untaped = compiled(data.x.map { Node($0) })
        for (k, output) in predicted.enumerated() { assertClose(output, untaped[k].value, tolerance: 1e-6, "\(label) predictions") }
        XCTAssertEqual(predicted.map(\.scalars), again.map(\.scalars), "\(label): a replayed prediction differs")
    }

    func testTwoInputModelFollowsEager() throws {
        // 36 - 3 held out = 33 = 2 × 16 + 1.
        try assertFollowsEager(twoInputModel, data: twoInputData(), batchSize: 16, epochs: 25,
                               fullShapes: [[16, 4, 1], [16, 4], [16, 1]], partialShapes: [[1, 4, 1], [1, 4], [1, 1]], "two inputs")
    }

    func testSeq2seqFollowsEager() throws {
        // 20 - 2 held out = 18 = 2 × 8 + 2.
        try assertFollowsEager(seq2seq, data: seq2seqData(), batchSize: 8, epochs: 15,
                               fullShapes: [[8, 5, 6], [8, 3, 6], [8, 3, 6]], partialShapes: [[2, 5, 6], [2, 3, 6], [2, 3, 6]], "seq2seq")
    }

    /// Sparse targets are fed to a plan as their one-hot (the sparse loss's one-hot constant would be frozen):
    /// an encoder–decoder on logits and a stack both compile and follow eager.
    func testSparseTargetsCompileAndFollowEager() throws {
        let (x, y) = seq2seqData()
        let indices = Tensor(shape: [20, 3], scalars: (0..<60).map { position in
            Float((0..<6).first { y[0].scalars[position * 6 + $0] == 1 }!)
        })
        let sparseSeq2seq = { (jitCompile: Bool) throws -> Model in
            let encoderInputs = Input(shape: [5, 6]), decoderInputs = Input(shape: [3, 6])
            let (_, h, c) = LSTM(hiddenSize: 10, seed: 3)(encoderInputs)
            let decoded = LSTM(hiddenSize: 10, returnSequences: true, seed: 4)(decoderInputs, initialState: [h, c])
            let model = try Model(inputs: [encoderInputs, decoderInputs], outputs: [Dense(outputSize: 6, seed: 5)(decoded)])
            try model.compile(loss: .sparseCategoricalCrossEntropy(fromLogits: true), optimizer: Adam(learningRate: 0.02),
                              metrics: [.accuracy], jitCompile: jitCompile)
            return model
        }
        try assertFollowsEager(sparseSeq2seq, data: (x, [indices]), batchSize: 8, epochs: 15,
                               fullShapes: [[8, 5, 6], [8, 3, 6], [8, 3]], partialShapes: [[2, 5, 6], [2, 3, 6], [2, 3]], "sparse seq2seq")

        let labels = indices.slice(along: 1, 0..<1).reshaped(to: [20])
        var histories: [History] = []
        for jitCompile in [false, true] {
            let stack = Sequential([LSTM(hiddenSize: 8, inputShape: [5, 6], seed: 6), Dense(outputSize: 6, seed: 7)])
            try stack.compile(loss: .sparseCategoricalCrossEntropy(fromLogits: true), optimizer: Adam(learningRate: 0.02),
                              metrics: [.accuracy], jitCompile: jitCompile)
            histories.append(try stack.fit(x[0], labels, epochs: 10, batchSize: 8, verbose: .silent, seed: 2))
            XCTAssertEqual(stack.compiledTrainingPlan(inputShape: [8, 5, 6], targetShape: [8]) != nil, jitCompile)
            XCTAssertEqual(stack.compiledTrainingPlan(inputShape: [4, 5, 6], targetShape: [4]) != nil, jitCompile)
        }
        for key in ["loss", "accuracy"] {
            for (epoch, (a, e)) in zip(histories[1][key], histories[0][key]).enumerated() {
                XCTAssertEqual(a, e, accuracy: 1e-5 * max(abs(e), 1e-6), "sparse stack \(key) at epoch \(epoch + 1)")
            }
        }
        XCTAssertLessThan(histories[1]["loss"].last!, histories[1]["loss"].first! * 0.7)
    }

    /// A plan is never replayed once the model's structure changed: freezing a layer drops every plan, and the
    /// next step traces a new one, which leaves the frozen weights alone.
    func testStructureChangeDropsEveryPlan() throws {
        let model = try twoInputModel(jitCompile: true)
        let (x, y) = twoInputData()
        let batch = (x.map { $0.slice(along: 0, 0..<16) }, y.map { $0.slice(along: 0, 0..<16) })
        let shapes = (batch.0.map(\.shape), batch.1.map(\.shape))
        _ = try model.trainOnBatch(batch.0, batch.1)
        let first = try XCTUnwrap(model.compiledTrainingPlan(inputShapes: shapes.0, targetShapes: shapes.1))
        let dense = model.layers.last!
        dense.parameters.forEach { $0.isTrainable = false }
        XCTAssertNil(model.compiledTrainingPlan(inputShapes: shapes.0, targetShapes: shapes.1), "a plan outlived a frozen layer")
        let frozen = dense.parameters.map(\.value.scalars)
        _ = try model.trainOnBatch(batch.0, batch.1)
        let second = try XCTUnwrap(model.compiledTrainingPlan(inputShapes: shapes.0, targetShapes: shapes.1))
        XCTAssertFalse(first === second, "the plan traced before freezing was replayed")
        XCTAssertEqual(dense.parameters.map(\.value.scalars), frozen, "a frozen layer was trained")
        try model.compile(loss: .meanAbsoluteError, optimizer: SGD())
        XCTAssertNil(model.compiledTrainingPlan(inputShapes: shapes.0, targetShapes: shapes.1), "compile kept a plan")
    }

    /// Masks read from the data, embeddings and sample weights keep the steps eager, as in `Sequential`.
    func testStepsAPlanWouldFreezeRunEagerly() throws {
        let input = Input(shape: [3, 1])
        let masked = try Model(inputs: input, outputs: Dense(outputSize: 1, seed: 6)(SimpleRNN(hiddenSize: 2, returnSequences: true, seed: 7)(Masking()(input))))
        try masked.compile(loss: .meanSquaredError, optimizer: SGD(learningRate: 0.1))
        let x = Tensor(shape: [2, 3, 1], scalars: [0.5, 0.2, 0, 0.3, 0.1, 0.4]), y = Tensor(shape: [2, 3, 1], scalars: [1, 2, 9, 3, 4, 5])
        _ = try masked.trainOnBatch([x], [y])
        XCTAssertNil(masked.compiledTrainingPlan(inputShapes: [[2, 3, 1]], targetShapes: [[2, 3, 1]]), "a mask was frozen into a plan")

        let tokens = Input(shape: [3])
        let embedded = try Model(inputs: tokens, outputs: Dense(outputSize: 2, seed: 8)(LSTM(hiddenSize: 2, seed: 9)(Embedding(vocabularySize: 5, outputSize: 2, seed: 10)(tokens))))
        try embedded.compile(loss: .sparseCategoricalCrossEntropy(fromLogits: true), optimizer: SGD())
        _ = try embedded.trainOnBatch([Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 0, 1])], [Tensor(shape: [2], scalars: [0, 1])])
        XCTAssertNil(embedded.compiledTrainingPlan(inputShapes: [[2, 3]], targetShapes: [[2]]), "embedding indices were frozen")

        let model = try twoInputModel(jitCompile: true)
        let (inputs, targets) = twoInputData()
        try model.fit(inputs, targets, epochs: 1, batchSize: 12, verbose: .silent, sampleWeight: Tensor.ones([36]))
        XCTAssertNil(model.compiledTrainingPlan(inputShapes: [[12, 4, 1], [12, 4]], targetShapes: [[12, 1]]),
                     "sample weights were frozen into a plan")
        try model.fit(inputs, targets, epochs: 1, batchSize: 12, verbose: .silent)
        XCTAssertNotNil(model.compiledTrainingPlan(inputShapes: [[12, 4, 1], [12, 4]], targetShapes: [[12, 1]]))
    }
}
