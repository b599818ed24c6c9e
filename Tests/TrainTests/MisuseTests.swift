import Foundation
import Graph
import Layers
import Train
import XCTest

/// Misuse a user can make with arrays handed to a model: targets of another layout, extreme values.
final class MisuseTests: XCTestCase {
    func testFitAcceptsOnlyTheSqueezesKerasAccepts() throws {
        let model = Sequential([LSTM(hiddenSize: 3, inputShape: [3, 2], returnSequences: true), Dense(outputSize: 2)])
        try model.compile(loss: .meanSquaredError, optimizer: SGD())
        let x = Tensor.randomUniform([4, 3, 2], in: -1...1, seed: 1)
        // Same element count, another layout: refused, naming both shapes.
        for wrong in [[4, 2, 3], [4, 6], [4, 3, 1, 2]] {
            XCTAssertThrowsError(try model.fit(x, Tensor.zeros(wrong), epochs: 1, verbose: .silent), "\(wrong)") { error in
                XCTAssertEqual(error as? TrainingError,
                               .shapeMismatch(name: "y", expected: [3, 2], actual: Array(wrong.dropFirst())))
            }
        }
        XCTAssertNoThrow(try model.fit(x, Tensor.zeros([4, 3, 2]), epochs: 1, verbose: .silent))
        XCTAssertNoThrow(try model.fit(x, Tensor.zeros([4, 3, 2, 1]), epochs: 1, verbose: .silent))

        let single = Sequential([Dense(outputSize: 1, inputShape: [2])])
        try single.compile(loss: .meanSquaredError, optimizer: SGD())
        XCTAssertNoThrow(try single.fit(Tensor.zeros([5, 2]), Tensor.zeros([5]), epochs: 1, verbose: .silent))
    }

    func testRMSEOfAHugeErrorIsFinite() throws {
        let model = Sequential([Dense(outputSize: 1, inputShape: [1])])
        try model.compile(loss: .meanAbsoluteError, optimizer: SGD(), metrics: [.rootMeanSquaredError])
        try model.setWeights([Tensor([[1]]), Tensor([0])])
        let result = try model.evaluate(Tensor([[1e20], [0]]), Tensor([[0], [0]]))
        // sqrt((1e40 + 0) / 2): the square overflows Float, not Double.
        XCTAssertEqual(try XCTUnwrap(result["rmse"]), Float((1e40 / 2.0).squareRoot()), accuracy: 1e14)
    }
}

/// An echo state network restarts its reservoir at every call, so truncated BPTT (chunks of a sequence) refuses it.
final class EchoStateTruncationTests: XCTestCase {
    func testTruncatedBPTTRefusesTheEchoStateNetwork() throws {
        let model = Sequential([EchoStateNetwork(reservoirSize: 8, outputSize: 1, inputShape: [6, 1], seed: 2)])
        try model.compile(loss: .meanSquaredError, optimizer: SGD())
        XCTAssertThrowsError(try model.fit(Tensor.zeros([4, 6, 1]), Tensor.zeros([4, 1]), epochs: 1, verbose: .silent,
                                           truncatedBPTTSteps: 2)) { error in
            XCTAssertEqual(error as? TrainingError,
                           .unsupported("truncated BPTT cannot run EchoStateNetwork: it needs the whole sequence at once"))
        }
    }
}
