import Foundation
import Graph
import TestSupport
import XCTest

/// Keras 3.15's masked LSTM (`Tests/Fixtures/keras/masked_lstm.json`): an input padded with zeros, the weights,
/// the sequence and last outputs, and the weights' gradients of the sequence output's squared sum. Read once
/// here for every test that checks a masked model against it.
struct MaskedLSTMReference {
    let units: Int
    /// `[batch, time, features]`.
    let shape: [Int]
    let input: Tensor
    /// What `Masking(maskValue: 0)` makes of the input, batch-major.
    let mask: [Float] = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    private let json: [String: Any]

    init() throws {
        let url = Fixture.packageRoot.appendingPathComponent("Tests/Fixtures/keras/masked_lstm.json")
        json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        units = json["units"] as! Int
        shape = (json["shape"] as! [NSNumber]).map(\.intValue)
        input = Tensor(shape: shape, scalars: (json["input"] as! [NSNumber]).map(\.floatValue))
    }

    private func floats(_ key: String) -> [Float] { (json[key] as! [NSNumber]).map(\.floatValue) }

    /// Sets an LSTM cell's kernel, recurrent kernel and bias to Keras'.
    func setWeights(_ cell: [Parameter]) {
        cell[0].value = Tensor(shape: [shape[2], 4 * units], scalars: floats("kernel"))
        cell[1].value = Tensor(shape: [units, 4 * units], scalars: floats("recurrent_kernel"))
        cell[2].value = Tensor(shape: [4 * units], scalars: floats("bias"))
    }

    /// Checks a returned sequence against Keras' (1e-5).
    func assertSequences(_ value: Tensor, file: StaticString = #filePath, line: UInt = #line) {
        assertClose(value, shape: [shape[0], shape[1], units], floats("sequences"), tolerance: 1e-5, file: file, line: line)
    }

    /// Checks a last output against Keras' (1e-5).
    func assertLast(_ value: Tensor, file: StaticString = #filePath, line: UInt = #line) {
        assertClose(value, shape: [shape[0], units], floats("last"), tolerance: 1e-5, file: file, line: line)
    }

    /// Checks the cell's gradients of the sequence output's squared sum against Keras' (1e-5).
    func assertGradients(_ cell: [Parameter], file: StaticString = #filePath, line: UInt = #line) {
        assertClose(cell[0].gradient!, shape: [shape[2], 4 * units], floats("grad_kernel"), tolerance: 1e-5, file: file, line: line)
        assertClose(cell[1].gradient!, shape: [units, 4 * units], floats("grad_recurrent_kernel"), tolerance: 1e-5,
                    file: file, line: line)
        assertClose(cell[2].gradient!, shape: [4 * units], floats("grad_bias"), tolerance: 1e-5, file: file, line: line)
    }
}
