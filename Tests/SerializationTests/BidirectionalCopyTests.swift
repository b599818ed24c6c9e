import Foundation
import Graph
import Layers
import Train
import XCTest

/// `Bidirectional(layer)` with the layer held in a variable: the backward direction gets its own copy.
final class BidirectionalCopyTests: XCTestCase {
    private final class PlainCell: RecurrentCell {
        let hiddenSize: Int
        var parameters: [Parameter] = []
        var inputSize: Int? { parameters.first?.shape[0] }
        var typeName: String { "Plain" }
        init(hiddenSize: Int) { self.hiddenSize = hiddenSize }
        func build(inputSize: Int) {
            if parameters.isEmpty { parameters = [Parameter("kernel", Tensor.zeros([inputSize, hiddenSize]))] }
        }
        func zeroState(batchSize: Int) -> Node { Node(Tensor.zeros([batchSize, hiddenSize])) }
        func callAsFunction(_ input: Node, state: Node) -> (output: Node, state: Node) {
            let next = tanh(input.matmul(input.onSameTape(parameters[0])) + state)
            return (next, next)
        }
    }

    func testALayerHeldInAVariableGetsItsOwnBackwardCopy() throws {
        let x = Tensor.randomUniform([2, 5, 3], in: -1...1, seed: 4)
        let inline = Bidirectional(LSTM(hiddenSize: 4, inputShape: [5, 3]))
        let held = LSTM(hiddenSize: 4, inputShape: [5, 3])
        let fromVariable = Bidirectional(held)
        for (label, layer) in [("inline", inline), ("variable", fromVariable)] {
            XCTAssertFalse(layer.forward === layer.backward, label)
            XCTAssertFalse(layer.forward.cell === layer.backward.cell, label)
            XCTAssertFalse(layer.forward.goBackwards, label)
            XCTAssertTrue(layer.backward.goBackwards, label)
            let identifiers = Set(layer.parameters.map { ObjectIdentifier($0) })
            XCTAssertEqual(identifiers.count, 6, "\(label): six distinct parameters")
            XCTAssertNotEqual(layer.forward.parameters[0].value.scalars, layer.backward.parameters[0].value.scalars,
                              "\(label): fresh weights for the backward direction")

            let model = Sequential([layer, Dense(outputSize: 1)])
            try model.compile(loss: .meanSquaredError, optimizer: SGD())
            XCTAssertEqual(model.parameterCount, 2 * 4 * 4 * (3 + 4 + 1) + 8 + 1, label)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bidirectional-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            try model.save(to: directory)
            let loaded = try Sequential.load(from: directory)
            XCTAssertEqual(try loaded.predict(x).scalars, try model.predict(x).scalars, "\(label): the same model after load")
        }
        XCTAssertTrue(fromVariable.forward === held)
    }

    func testASharedCellThatCannotBeCopiedIsRefusedAtCompile() {
        let shared = RNN(PlainCell(hiddenSize: 2), inputShape: [3, 1])
        let model = Sequential([Bidirectional(shared)])
        XCTAssertThrowsError(try model.compile(loss: .meanSquaredError, optimizer: SGD())) { error in
            guard case .invalidSetting(let layer, let setting, _, _)? = error as? TrainingError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(layer, "bidirectional (Bidirectional)")
            XCTAssertEqual(setting, "layer")
        }
    }
}
