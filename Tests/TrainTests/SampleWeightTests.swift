import Graph
import Layers
import Train
import XCTest

/// `sampleWeight` and `classWeight` in `fit`, for `Sequential` and `Model` alike.
final class SampleWeightTests: XCTestCase {
    let x = Tensor(shape: [6, 3, 1], scalars: (0..<18).map { Float(($0 * 4) % 7) / 7 })
    let y = Tensor(shape: [6, 1], scalars: [0, 1, 1, 0, 1, 0])

    func makeSequential() throws -> Sequential {
        let model = Sequential([SimpleRNN(hiddenSize: 3, inputShape: [3, 1], seed: 1), Dense(outputSize: 1, seed: 2)])
        try model.compile(loss: .meanSquaredError, optimizer: SGD(learningRate: 0.1))
        return model
    }

    func testWeightedLossIsTheWeightedMeanOfSampleLosses() throws {
        let model = try makeSequential()
        let weights: [Float] = [1, 2, 0, 0.5, 3, 1]
        let prediction = try model.predict(x).scalars
        let expected = zip(zip(prediction, y.scalars), weights).map { pair, w in w * (pair.0 - pair.1) * (pair.0 - pair.1) }.reduce(0, +) / 6
        let history = try model.fit(x, y, epochs: 1, batchSize: 6, shuffle: false, verbose: .silent,
                                    sampleWeight: Tensor(shape: [6], scalars: weights))
        XCTAssertEqual(history.values["loss"]![0], expected, accuracy: 1e-6)

        let unweighted = try makeSequential(), ones = try makeSequential()
        let plain = try unweighted.fit(x, y, epochs: 3, batchSize: 2, verbose: .silent, seed: 4)
        let weighted = try ones.fit(x, y, epochs: 3, batchSize: 2, verbose: .silent, sampleWeight: Tensor(shape: [6], repeating: 1), seed: 4)
        for (a, b) in zip(plain.values["loss"]!, weighted.values["loss"]!) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }

    func testClassWeightsAreSampleWeightsByClassForBothModelKinds() throws {
        let byClass = try makeSequential(), bySample = try makeSequential()
        let classWeighted = try byClass.fit(x, y, epochs: 2, batchSize: 3, verbose: .silent, classWeight: [0: 1, 1: 3], seed: 2)
        let sampleWeighted = try bySample.fit(x, y, epochs: 2, batchSize: 3, verbose: .silent,
                                              sampleWeight: Tensor(shape: [6], scalars: y.scalars.map { $0 == 1 ? 3 : 1 }), seed: 2)
        XCTAssertEqual(classWeighted.values["loss"]!, sampleWeighted.values["loss"]!)
        XCTAssertEqual(byClass.weights.map(\.scalars), bySample.weights.map(\.scalars))

        let input = Input(shape: [3, 1])
        let model = try Model(inputs: input, outputs: Dense(outputSize: 1, seed: 2)(SimpleRNN(hiddenSize: 3, seed: 1)(input)))
        try model.compile(loss: .meanSquaredError, optimizer: SGD(learningRate: 0.1))
        let functional = try model.fit([x], [y], epochs: 2, batchSize: 3, verbose: .silent, classWeight: [0: 1, 1: 3], seed: 2)
        for (a, b) in zip(functional.values["loss"]!, classWeighted.values["loss"]!) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }

    func testBadWeightsThrow() throws {
        let model = try makeSequential()
        XCTAssertThrowsError(try model.fit(x, y, verbose: .silent, sampleWeight: Tensor.zeros([5]))) { error in
            XCTAssertEqual(error as? TrainingError, .shapeMismatch(name: "sampleWeight", expected: [6], actual: [5]))
        }
        XCTAssertThrowsError(try model.fit(x, y, verbose: .silent, sampleWeight: Tensor(shape: [6], scalars: [1, 1, -1, 1, 1, 1]))) { error in
            XCTAssertEqual(error as? TrainingError, .invalidArgument(name: "sampleWeight[2]", value: "-1.0", reason: "must be finite and not negative"))
        }
        XCTAssertThrowsError(try model.fit(x, y, verbose: .silent, truncatedBPTTSteps: 1, classWeight: [1: 2])) { error in
            XCTAssertEqual(error as? TrainingError, .unsupported("sample and class weights cannot be combined with truncated BPTT"))
        }
        let sequence = Sequential([SimpleRNN(hiddenSize: 2, inputShape: [3, 1], returnSequences: true), Dense(outputSize: 1)])
        try sequence.compile(loss: .meanSquaredError, optimizer: SGD())
        XCTAssertThrowsError(try sequence.fit(x, Tensor.zeros([6, 3, 1]), verbose: .silent, classWeight: [0: 2])) { error in
            XCTAssertEqual(error as? TrainingError, .unsupported("class weights need one class per sample; the targets are [3, 1] per sample"))
        }
    }
}
