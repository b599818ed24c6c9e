import Graph
import Layers
import TestSupport
import XCTest

/// Parameter counts against Keras, shapes, wrappers, and a user's own cell.
final class LayerTests: XCTestCase {
    func count(_ layer: some Layer, inputShape: [Int]) throws -> Int {
        try layer.build(inputShape: inputShape)
        return layer.parameters.reduce(0) { $0 + $1.value.count }
    }

    func testParameterCountsMatchKeras() throws {
        XCTAssertEqual(try count(LSTM(hiddenSize: 400), inputShape: [32, 1]), 643_200)
        XCTAssertEqual(try count(Dense(outputSize: 8), inputShape: [400]), 3_208)
        XCTAssertEqual(try count(GRU(hiddenSize: 50), inputShape: [10, 100]), 22_800)
        XCTAssertEqual(try count(GRU(hiddenSize: 50, resetAfter: false), inputShape: [10, 100]), 22_650)
        for (d, u) in [(1, 16), (3, 7), (100, 50)] {
            XCTAssertEqual(try count(SimpleRNN(hiddenSize: u), inputShape: [5, d]), u * (d + u) + u, "SimpleRNN(\(u)) on \(d)")
        }
        XCTAssertEqual(try count(Bidirectional(LSTM(hiddenSize: 40)), inputShape: [32, 1]), 2 * 4 * 40 * (1 + 40 + 1))
        XCTAssertEqual(try count(Bidirectional(GRU(hiddenSize: 50)), inputShape: [10, 100]), 2 * 22_800)
        XCTAssertEqual(try count(PeepholeLSTM(hiddenSize: 10), inputShape: [5, 3]), 4 * 10 * (3 + 10 + 1) + 3 * 10)
        XCTAssertEqual(try count(IndRNN(hiddenSize: 10), inputShape: [5, 3]), 10 * 3 + 10 + 10)
    }

    func testKerasInitialisation() throws {
        let lstm = LSTM(hiddenSize: 4, inputShape: [3, 2], seed: 9)
        let bias = lstm.parameters[2].value.scalars
        XCTAssertEqual(bias, [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0], "unit forget bias")
        // Each gate's recurrent block is orthogonal: UᵀU = I.
        let recurrent = lstm.parameters[1].value
        for k in 0..<4 {
            let block = recurrent.slice(along: 1, (4 * k)..<(4 * k + 4))
            assertClose(block.matmul(block, transposingSelf: true), Tensor(shape: [4, 4], scalars: (0..<16).map { $0 % 5 == 0 ? 1 : 0 }), tolerance: 1e-5, "block \(k)")
        }
        let limit = (6 / Float(2 + 16)).squareRoot()
        XCTAssertTrue(lstm.parameters[0].value.scalars.allSatisfy { abs($0) <= limit }, "glorot uniform limit")
        XCTAssertEqual(LSTM(hiddenSize: 4, inputShape: [3, 2], seed: 9).parameters[0].value, lstm.parameters[0].value, "seeded")
    }

    func testShapesAndErrors() throws {
        let layer = LSTM(hiddenSize: 5, returnSequences: true)
        XCTAssertEqual(try layer.outputShape(forInputShape: [7, 3]), [7, 5])
        XCTAssertEqual(try LSTM(hiddenSize: 5).outputShape(forInputShape: [7, 3]), [5])
        XCTAssertThrowsError(try layer.outputShape(forInputShape: [3])) { error in
            XCTAssertTrue("\(error)".contains("[time, features]"), "\(error)")
        }
        try layer.build(inputShape: [7, 3])
        XCTAssertThrowsError(try layer.outputShape(forInputShape: [7, 4])) { error in
            XCTAssertEqual("\(error)", "LSTM: built for 3 features, got 4")
        }
        XCTAssertEqual(try Bidirectional(GRU(hiddenSize: 4, returnSequences: true)).outputShape(forInputShape: [6, 2]), [6, 8])
        XCTAssertEqual(try Bidirectional(GRU(hiddenSize: 4), mergeMode: .sum).outputShape(forInputShape: [6, 2]), [4])
        let output = layer(Node(Tensor.zeros([2, 7, 3])))
        XCTAssertEqual(output.shape, [2, 7, 5])
        XCTAssertEqual(Dense(outputSize: 3, inputShape: [5]).typeName, "Dense")
        let dense = Dense(inputSize: 5, outputSize: 3)
        XCTAssertEqual(dense(Node(Tensor.zeros([2, 4, 5]))).shape, [2, 4, 3], "Dense maps each step")
    }

    func testMergeModes() throws {
        let x = Node(Tensor.randomUniform([2, 4, 3], in: -1...1, seed: 5))
        let modes: [Bidirectional<GRUCell>.MergeMode] = [.concatenate, .sum, .multiply, .average]
        var results: [Tensor] = []
        for mode in modes {
            let layer = Bidirectional(GRU(hiddenSize: 3, inputShape: [4, 3], returnSequences: true, seed: 1), mergeMode: mode)
            let a = layer.forward.run(x).outputs.last!.value, b = layer.backward.run(x).outputs.first!.value
            let merged = layer(x)
            let lastStep = merged.value.slice(along: 1, 3..<4).reshaped(to: [2, merged.shape[2]])
            switch mode {
            case .concatenate: assertClose(lastStep.slice(along: 1, 0..<3), a, tolerance: 1e-6, "concat forward half")
            case .sum: assertClose(lastStep, a + b, tolerance: 1e-6, "sum")
            case .multiply: assertClose(lastStep, a * b, tolerance: 1e-6, "multiply")
            case .average: assertClose(lastStep, (a + b) * 0.5, tolerance: 1e-6, "average")
            }
            results.append(merged.value)
        }
        XCTAssertEqual(results[0].shape, [2, 4, 6])
    }

    func testGoBackwardsAndStatefulRuns() throws {
        let x = Tensor.randomUniform([1, 5, 2], in: -1...1, seed: 3)
        let reversed = Tensor.concatenate((0..<5).reversed().map { x.slice(along: 1, $0..<($0 + 1)) }, along: 1)
        let forward = SimpleRNN(hiddenSize: 3, inputShape: [5, 2], seed: 4)
        let backward = SimpleRNN(hiddenSize: 3, inputShape: [5, 2], goBackwards: true, seed: 4)
        assertClose(backward(Node(x)).value, forward(Node(reversed)).value, tolerance: 1e-6, "goBackwards reads the reversed sequence")

        // A stateful layer run on two halves equals one run on the whole sequence.
        let whole = SimpleRNN(hiddenSize: 3, inputShape: [5, 2], seed: 4)
        let stateful = SimpleRNN(hiddenSize: 3, inputShape: [5, 2], isStateful: true, seed: 4)
        _ = stateful(Node(x.slice(along: 1, 0..<3)))
        let second = stateful(Node(x.slice(along: 1, 3..<5)))
        assertClose(second.value, whole(Node(x)).value, tolerance: 1e-6, "state carried across batches")
        stateful.resetStates()
        assertClose(stateful(Node(x)).value, whole(Node(x)).value, tolerance: 1e-6, "reset starts from zeros")
        // An explicit initial state is used.
        let h0 = Node(Tensor.randomUniform([1, 3], in: -1...1, seed: 8))
        XCTAssertNotEqual(whole(Node(x), initialState: h0).output.value, whole(Node(x)).value)
    }

    func testScopeLabelsShowTheUnrolledSteps() {
        let layer = LSTM(hiddenSize: 3, inputShape: [4, 2], seed: 1)
        let tape = Tape()
        _ = layer(tape.constant(Tensor.zeros([2, 4, 2])))
        let scopes = Set(tape.nodes.map(\.scope))
        XCTAssertEqual(scopes, ["", "lstm", "lstm/t0", "lstm/t1", "lstm/t2", "lstm/t3"])
        let perStep = tape.nodes.filter { $0.scope == "lstm/t2" }.map(\.op)
        XCTAssertEqual(perStep.filter { $0 == "sigmoid" }.count, 3)
        XCTAssertEqual(perStep.filter { $0 == "tanh" }.count, 2)
        XCTAssertEqual(tape.nodes.filter { $0.op == "parameter" }.count, 3, "kernel, recurrent kernel and bias recorded once")
    }

    func testIndRNNBoundsRecurrentWeights() throws {
        let layer = IndRNN(hiddenSize: 4, inputShape: [10, 2], seed: 2)
        let bound = Float(pow(2.0, 0.1))
        layer.parameters[1].value = Tensor([3, -3, 0.5, -0.5])
        layer.applyConstraints()
        assertClose(layer.parameters[1].value, shape: [4], [bound, -bound, 0.5, -0.5], tolerance: 1e-6)
    }

    func testGradientNormsThroughTimeEqualDirectBackpropagation() throws {
        let layer = SimpleRNN(hiddenSize: 4, inputShape: [6, 2], seed: 11)
        let x = Tensor.randomUniform([3, 6, 2], in: -1...1, seed: 12)
        let norms = layer.gradientNormsThroughTime(input: x) { $0.sum() }
        // Directly: dh(T) = 1; dh(t-1) = (dh(t) ⊙ (1 - h(t)²)) Uᵀ, with h(t) from an untaped run.
        let hs = layer.run(Node(x)).outputs.map(\.value)
        let u = layer.parameters[1].value
        var dh = Tensor.ones([3, 4])
        var direct = [Float](repeating: 0, count: 6)
        for t in stride(from: 5, through: 0, by: -1) {
            direct[t] = dh.scalars.reduce(0) { $0 + $1 * $1 }.squareRoot()
            dh = (dh * (1 - hs[t] * hs[t])).matmul(u, transposingOther: true)
        }
        for t in 0..<6 { XCTAssertEqual(norms[t], direct[t], accuracy: 1e-5 * max(1, direct[t]), "step \(t)") }
        // Vanishing: a SimpleRNN's early-step gradients on a long sequence are far smaller than an LSTM's.
        let long = Tensor.randomUniform([2, 80, 1], in: -1...1, seed: 13)
        let rnn = SimpleRNN(hiddenSize: 8, inputShape: [80, 1], seed: 14).gradientNormsThroughTime(input: long) { $0.sum() }
        let lstm = LSTM(hiddenSize: 8, inputShape: [80, 1], seed: 14).gradientNormsThroughTime(input: long) { $0.sum() }
        XCTAssertLessThan(rnn[0] / rnn[79], lstm[0] / lstm[79])
    }
}
