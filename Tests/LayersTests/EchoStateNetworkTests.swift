import Foundation
import Graph
import Layers
import TestSupport
import XCTest

final class EchoStateNetworkTests: XCTestCase {
    // MARK: Shapes and parameters

    func testOutputShapesForLastStepAndSequences() throws {
        let input = Tensor.randomUniform([2, 7, 3], in: -1...1, seed: 1)
        let last = EchoStateNetwork(reservoirSize: 12, outputSize: 4, inputShape: [7, 3], seed: 2)
        let sequences = EchoStateNetwork(reservoirSize: 12, outputSize: 4, returnSequences: true, seed: 2)
        XCTAssertEqual(last(Node(input)).shape, [2, 4])
        XCTAssertEqual(sequences(Node(input)).shape, [2, 7, 4])
        XCTAssertEqual(try last.outputShape(forInputShape: [7, 3]), [4])
        XCTAssertEqual(try sequences.outputShape(forInputShape: [7, 3]), [7, 4])
        XCTAssertEqual(try sequences.reservoirStates(for: input).shape, [2, 7, 12])
        XCTAssertEqual(last.typeName, "EchoStateNetwork")
    }

    func testReservoirParametersAreNotTrainableAndCountedInOrder() {
        let esn = EchoStateNetwork(reservoirSize: 20, outputSize: 2, inputShape: [5, 3], seed: 3)
        XCTAssertEqual(esn.parameters.map(\.name), ["kernel", "recurrent_kernel", "bias", "readout_kernel", "readout_bias"])
        XCTAssertEqual(esn.parameters.map(\.shape), [[3, 20], [20, 20], [20], [20, 2], [2]])
        XCTAssertEqual(esn.parameters.map(\.isTrainable), [false, false, false, true, true])
        XCTAssertEqual(esn.nonTrainableParameterCount, 3 * 20 + 20 * 20 + 20)
        XCTAssertEqual(esn.trainableParameterCount, 20 * 2 + 2)
        XCTAssertTrue(EchoStateNetwork(reservoirSize: 20, outputSize: 2, seed: 3).parameters.isEmpty,
                      "no parameters before the input size is known")
    }

    func testReservoirWeightsFollowTheirDistributions() {
        let esn = EchoStateNetwork(reservoirSize: 100, outputSize: 1, inputScaling: 0.5, connectivity: 0.2,
                                   inputShape: [1, 4], seed: 4)
        let input = esn.inputKernel!.value.scalars, bias = esn.reservoirBias!.value.scalars
        XCTAssertTrue(input.allSatisfy { abs($0) <= 0.5 })
        XCTAssertGreaterThan(input.map { abs($0) }.max()!, 0.45, "input kernel spans ±inputScaling")
        XCTAssertTrue(bias.allSatisfy { abs($0) <= 0.05 })
        XCTAssertGreaterThan(bias.map { abs($0) }.max()!, 0.04, "bias spans ±0.1·inputScaling")
        // 10,000 entries at 20 %: the nonzero fraction has a standard deviation of 0.4 %.
        let nonzero = Float(esn.recurrentKernel!.value.scalars.filter { $0 != 0 }.count) / 10_000
        XCTAssertEqual(nonzero, 0.2, accuracy: 0.02)
    }

    func testSameSeedGivesTheSameReservoir() {
        let a = EchoStateNetwork(reservoirSize: 30, outputSize: 2, inputShape: [4, 3], seed: 7)
        let b = EchoStateNetwork(reservoirSize: 30, outputSize: 2, inputShape: [4, 3], seed: 7)
        let c = EchoStateNetwork(reservoirSize: 30, outputSize: 2, inputShape: [4, 3], seed: 8)
        for (p, q) in zip(a.parameters, b.parameters) { XCTAssertEqual(p.value, q.value, p.name) }
        for (p, q) in zip(a.parameters, c.parameters) where p.name != "readout_bias" {
            XCTAssertNotEqual(p.value, q.value, p.name)
        }
    }

    // MARK: Spectral radius

    func testSpectralRadiusEstimateOnMatricesWithKnownSpectra() {
        XCTAssertEqual(EchoStateNetwork.estimatedSpectralRadius(of: Tensor([[0.5, 0, 0], [0, -2, 0], [0, 0, 1]])),
                       2, accuracy: 1e-3)
        // Block upper triangular: the eigenvalues are those of the diagonal blocks. The two leading
        // ones are complex pairs of modulus 1.5 and 1.47, so the iterate never settles.
        let n = 20
        var matrix = Tensor.randomUniform([n, n], in: -1...1, seed: 5)
        func rotation(_ radius: Float, _ angle: Float) -> [[Float]] {
            [[radius * cos(angle), -radius * sin(angle)], [radius * sin(angle), radius * cos(angle)]]
        }
        let blocks = [rotation(1.5, 0.7), rotation(1.47, 2), rotation(1.2, 1)] + Array(repeating: rotation(0.5, 0.3), count: 7)
        for i in 0..<n {
            for j in 0..<n where j / 2 < i / 2 { matrix[i, j] = 0 }
        }
        for (k, block) in blocks.enumerated() {
            for i in 0..<2 { for j in 0..<2 { matrix[2 * k + i, 2 * k + j] = block[i][j] } }
        }
        XCTAssertEqual(EchoStateNetwork.estimatedSpectralRadius(of: matrix), 1.5, accuracy: 0.015)
        // A cyclic shift: every eigenvalue on the unit circle.
        var shift = Tensor.zeros([n, n])
        for i in 0..<n { shift[i, (i + 1) % n] = 1 }
        XCTAssertEqual(EchoStateNetwork.estimatedSpectralRadius(of: shift), 1, accuracy: 1e-4)
        // Nilpotent: strictly upper triangular.
        var nilpotent = Tensor.randomUniform([n, n], in: -1...1, seed: 6)
        for i in 0..<n { for j in 0...i { nilpotent[i, j] = 0 } }
        XCTAssertEqual(EchoStateNetwork.estimatedSpectralRadius(of: nilpotent), 0)
    }

    func testRecurrentKernelIsRescaledToTheSpectralRadius() {
        for (radius, seed) in [(Float(1.1), UInt64(9)), (0.5, 10)] {
            let esn = EchoStateNetwork(reservoirSize: 80, outputSize: 1, spectralRadius: radius, connectivity: 0.2,
                                       inputShape: [1, 1], seed: seed)
            let kernel = esn.recurrentKernel!.value
            XCTAssertEqual(EchoStateNetwork.estimatedSpectralRadius(of: kernel), radius, accuracy: 0.02 * radius)
            XCTAssertEqual(Float(gelfandRadius(kernel)), radius, accuracy: 0.02 * radius, "Gelfand's formula")
        }
    }

    /// Returns `‖W^k‖_F^(1/k)` for `k = 2¹²`, an upper estimate of the spectral radius that tends to it
    /// (Gelfand's formula), found by repeated squaring in Double with the scale kept as a logarithm.
    private func gelfandRadius(_ matrix: Tensor) -> Double {
        let n = matrix.shape[0]
        var power = matrix.scalars.map(Double.init)
        var logScale = 0.0  // power = W^k / exp(logScale)
        var k = 1.0
        for _ in 0..<12 {
            var square = [Double](repeating: 0, count: n * n)
            for i in 0..<n {
                for l in 0..<n where power[i * n + l] != 0 {
                    let a = power[i * n + l]
                    for j in 0..<n { square[i * n + j] += a * power[l * n + j] }
                }
            }
            let norm = square.reduce(0) { $0 + $1 * $1 }.squareRoot()
            power = square.map { $0 / norm }
            logScale = 2 * logScale + log(norm)
            k *= 2
        }
        return exp(logScale / k)
    }

    // MARK: State update

    func testStatesFollowTheLeakyUpdateComputedByHand() throws {
        let leak: Float = 0.3
        let esn = EchoStateNetwork(reservoirSize: 6, outputSize: 1, leakRate: leak, connectivity: 0.5,
                                   inputShape: [3, 2], seed: 11)
        let input = Tensor.randomUniform([1, 3, 2], in: -1...1, seed: 12)
        let inputKernel = esn.inputKernel!.value, recurrent = esn.recurrentKernel!.value, bias = esn.reservoirBias!.value
        var h = [Double](repeating: 0, count: 6)
        var expected: [Float] = []
        for t in 0..<3 {
            var next = h
            for j in 0..<6 {
                var drive = Double(bias[j])
                for f in 0..<2 { drive += Double(input[0, t, f]) * Double(inputKernel[f, j]) }
                for i in 0..<6 { drive += h[i] * Double(recurrent[i, j]) }
                next[j] = (1 - Double(leak)) * h[j] + Double(leak) * tanh(drive)
            }
            h = next
            expected += h.map(Float.init)
        }
        assertClose(try esn.reservoirStates(for: input), shape: [1, 3, 6], expected, tolerance: 1e-5, "states")
    }

    func testLeakRateZeroKeepsTheStateAtZero() throws {
        let esn = EchoStateNetwork(reservoirSize: 10, outputSize: 2, leakRate: 0, returnSequences: true,
                                   inputShape: [5, 3], seed: 13)
        esn.readoutBias!.value = Tensor([0.3, -0.2])
        let input = Tensor.randomUniform([2, 5, 3], in: -1...1, seed: 14)
        assertClose(try esn.reservoirStates(for: input), Tensor.zeros([2, 5, 10]), tolerance: 0, "states")
        let output = esn(Node(input)).value
        assertClose(output, shape: [2, 5, 2], Array(repeating: [0.3, -0.2], count: 10).flatMap { $0 }, tolerance: 0,
                    "only the readout bias is left")
    }

    /// The graph forward pass (matrix products) and `reservoirStates` (the sparse product for up to
    /// four sequences, the dense one beyond) compute the same thing.
    func testGraphForwardMatchesReservoirStatesAndReadout() throws {
        for batch in [3, 6] {
            let esn = EchoStateNetwork(reservoirSize: 40, outputSize: 3, spectralRadius: 1.1, leakRate: 0.6,
                                       returnSequences: true, inputShape: [9, 2], seed: 15)
            let input = Tensor.randomUniform([batch, 9, 2], in: -1...1, seed: 16)
            let states = try esn.reservoirStates(for: input)
            assertClose(esn(Node(input)).value, try esn.readout(of: states), tolerance: 1e-5, "batch \(batch) sequences")
            let last = EchoStateNetwork(reservoirSize: 40, outputSize: 3, spectralRadius: 1.1, leakRate: 0.6,
                                        inputShape: [9, 2], seed: 15)
            assertClose(last(Node(input)).value, try last.readout(of: states.slice(along: 1, 8..<9).reshaped(to: [batch, 40])),
                        tolerance: 1e-5, "batch \(batch) last step")
        }
    }

    func testStepsAreLabelledOnTheTape() {
        let esn = EchoStateNetwork(reservoirSize: 8, outputSize: 1, inputShape: [4, 2], seed: 17)
        let tape = Tape()
        _ = esn(tape.constant(Tensor.randomUniform([1, 4, 2], seed: 18)))
        let scopes = Set(tape.nodes.map(\.scope))
        XCTAssertEqual(scopes, ["", "esn", "esn/t0", "esn/t1", "esn/t2", "esn/t3", "esn/readout"])
        XCTAssertEqual(tape.nodes.filter { $0.scope == "esn/t2" }.map(\.op).filter { $0 == "tanh" }.count, 1)
    }

    // MARK: Training the readout

    func testGradientStepsOnTheReadoutReduceTheLoss() {
        let esn = EchoStateNetwork(reservoirSize: 16, outputSize: 2, inputShape: [6, 3], seed: 19)
        let input = Tensor.randomUniform([8, 6, 3], in: -1...1, seed: 20)
        let targets = Tensor.randomUniform([8, 2], in: -0.5...0.5, seed: 21)
        let reservoir = esn.parameters.prefix(3).map(\.value)
        let lastStates = try! esn.reservoirStates(for: input).slice(along: 1, 5..<6).reshaped(to: [8, 16])
        var losses: [Float] = []
        for step in 0..<30 {
            let tape = Tape()
            let output = esn(tape.constant(input))
            let error = output - tape.constant(targets)
            let loss = (error * error).mean()
            tape.backward(from: loss)
            losses.append(loss.value.scalar)
            if step == 0 {
                // d mean((y − t)²) / dW_out = Sᵀ · 2 (y − t) / count, with S the last states.
                let expected = lastStates.matmul(error.value * (2 / 16), transposingSelf: true)
                assertClose(esn.readoutKernel!.gradient!, expected, tolerance: 1e-4, "readout kernel gradient")
            }
            for parameter in esn.parameters {
                if parameter.isTrainable { parameter.value.add(parameter.gradient!, scaledBy: -0.5) }
                XCTAssertEqual(parameter.gradient == nil, !parameter.isTrainable, "\(parameter.name) gradient")
                parameter.zeroGradient()
            }
        }
        XCTAssertLessThan(losses.last!, 0.5 * losses.first!, "losses \(losses)")
        XCTAssertEqual(esn.parameters.prefix(3).map(\.value), reservoir, "the reservoir does not change")
    }

    func testFitReadoutRecoversALinearFunctionOfTheStates() throws {
        // Sequence targets: steps before the washout carry nonsense that only the washout leaves out.
        let esn = EchoStateNetwork(reservoirSize: 10, outputSize: 2, returnSequences: true, inputShape: [60, 2], seed: 22)
        let input = Tensor.randomUniform([3, 60, 2], in: -1...1, seed: 23)
        let states = try esn.reservoirStates(for: input)
        let weights = Tensor.randomUniform([10, 2], in: -1...1, seed: 24), bias = Tensor([0.25, -0.5])
        var targets = states.reshaped(to: [-1, 10]).matmul(weights).reshaped(to: [3, 60, 2]) + bias
        for b in 0..<3 { for t in 0..<5 { targets[b, t, 0] = 100 } }
        try esn.fitReadout(inputs: input, targets: targets, ridge: 0, washout: 5)
        assertClose(esn.readoutKernel!.value, weights, tolerance: 1e-3, "kernel")
        assertClose(esn.readoutBias!.value, bias, tolerance: 1e-3, "bias")

        // Last-state targets: one row per sequence.
        let last = EchoStateNetwork(reservoirSize: 6, outputSize: 1, inputShape: [4, 1], seed: 25)
        let many = Tensor.randomUniform([40, 4, 1], in: -1...1, seed: 26)
        let lastStates = try last.reservoirStates(for: many).slice(along: 1, 3..<4).reshaped(to: [40, 6])
        let lastWeights = Tensor.randomUniform([6, 1], in: -1...1, seed: 27)
        try last.fitReadout(inputs: many, targets: lastStates.matmul(lastWeights) + 0.75, ridge: 0)
        assertClose(last.readoutKernel!.value, lastWeights, tolerance: 1e-3, "last-state kernel")
        assertClose(last.readoutBias!.value, Tensor([0.75]), tolerance: 1e-3, "last-state bias")
    }

    // MARK: Ridge regression

    func testRidgeRegressionSolvesSystemsByHand() throws {
        // y = 2x + 1 at x = 0, 1, 2. Centred: x̄ = 1, Σ(x − x̄)² = 2, Σ(x − x̄)(y − ȳ) = 4, so
        // w = 4 / (2 + ridge) and b = ȳ − w x̄ = 3 − w.
        var line = RidgeRegression(featureCount: 1, outputCount: 1)
        try line.add(features: Tensor([[0], [1], [2]]), targets: Tensor([[1], [3], [5]]))
        var (weights, bias) = try line.solve(ridge: 0)
        assertClose(weights, shape: [1, 1], [2], tolerance: 1e-6, "exact slope")
        assertClose(bias, shape: [1], [1], tolerance: 1e-6, "exact intercept")
        (weights, bias) = try line.solve(ridge: 2)
        assertClose(weights, shape: [1, 1], [1], tolerance: 1e-6, "shrunk slope")
        assertClose(bias, shape: [1], [2], tolerance: 1e-6, "unpenalised intercept")

        // Correlated features, added in two batches (5 rows: one block of four and a remainder).
        // y = 3 s₁ − 2 s₂ + 0.5 exactly, so the unregularised fit recovers it.
        var plane = RidgeRegression(featureCount: 2, outputCount: 1)
        let rows: [[Float]] = [[1, 2], [2, 1], [3, 5], [0, 1], [4, 3]]
        try plane.add(features: Tensor(Array(rows[0..<2])), targets: Tensor(rows[0..<2].map { [3 * $0[0] - 2 * $0[1] + 0.5] }))
        try plane.add(features: Tensor(Array(rows[2...])), targets: Tensor(rows[2...].map { [3 * $0[0] - 2 * $0[1] + 0.5] }))
        XCTAssertEqual(plane.sampleCount, 5)
        (weights, bias) = try plane.solve(ridge: 0)
        assertClose(weights, shape: [2, 1], [3, -2], tolerance: 1e-5, "plane weights")
        assertClose(bias, shape: [1], [0.5], tolerance: 1e-5, "plane bias")

        // Two outputs with a ridge: SᵀS = 2I and centred SᵀY = [[2, 0], [4, 0]], so W = SᵀY / (2 + 2).
        var twoOutputs = RidgeRegression(featureCount: 2, outputCount: 2)
        try twoOutputs.add(features: Tensor([[1, 0], [0, 1], [-1, 0], [0, -1]]),
                           targets: Tensor([[1, 0], [2, 1], [-1, 0], [-2, 1]]))
        (weights, bias) = try twoOutputs.solve(ridge: 2)
        assertClose(weights, shape: [2, 2], [0.5, 0, 1, 0], tolerance: 1e-6, "two-output weights")
        assertClose(bias, shape: [2], [0, 0.5], tolerance: 1e-6, "two-output bias")
    }

    func testRidgeRegressionReportsBadInput() throws {
        var regression = RidgeRegression(featureCount: 2, outputCount: 1)
        XCTAssertThrowsError(try regression.solve(ridge: 1)) { XCTAssertEqual($0 as? RidgeRegressionError, .noSamples) }
        XCTAssertThrowsError(try regression.add(features: Tensor([[1, 2, 3]]), targets: Tensor([[1]]))) {
            XCTAssertEqual($0 as? RidgeRegressionError, .shapeMismatch(argument: "features", expected: "[rows, 2]", actual: [1, 3]))
        }
        XCTAssertThrowsError(try regression.add(features: Tensor([[1, 2]]), targets: Tensor([[1, 2]]))) {
            XCTAssertEqual($0 as? RidgeRegressionError, .shapeMismatch(argument: "targets", expected: "[1, 1]", actual: [1, 2]))
        }
        // The second feature is twice the first: singular without a ridge, solvable with one.
        try regression.add(features: Tensor([[1, 2], [2, 4], [3, 6]]), targets: Tensor([[1], [2], [4]]))
        XCTAssertThrowsError(try regression.solve(ridge: 0)) {
            XCTAssertEqual($0 as? RidgeRegressionError, .notPositiveDefinite(ridge: 0))
        }
        XCTAssertThrowsError(try regression.solve(ridge: -1)) { XCTAssertEqual($0 as? RidgeRegressionError, .invalidRidge(-1)) }
        XCTAssertNoThrow(try regression.solve(ridge: 1e-3))
    }

    // MARK: Errors

    func testShapeErrorsThrow() throws {
        let esn = EchoStateNetwork(reservoirSize: 5, outputSize: 2, seed: 28)
        XCTAssertThrowsError(try esn.readout(of: Tensor.zeros([1, 5]))) { XCTAssertEqual($0 as? EchoStateNetworkError, .notBuilt) }
        XCTAssertThrowsError(try esn.reservoirStates(for: Tensor.zeros([4, 3]))) {
            XCTAssertEqual($0 as? EchoStateNetworkError,
                           .shapeMismatch(argument: "inputs", expected: "[batch, time ≥ 1, features]", actual: [4, 3]))
        }
        let input = Tensor.zeros([2, 4, 3])
        _ = try esn.reservoirStates(for: input)
        XCTAssertThrowsError(try esn.reservoirStates(for: Tensor.zeros([2, 4, 1]))) {
            XCTAssertEqual($0 as? EchoStateNetworkError,
                           .shapeMismatch(argument: "inputs", expected: "[batch, time ≥ 1, 3]", actual: [2, 4, 1]))
        }
        XCTAssertThrowsError(try esn.fitReadout(inputs: input, targets: Tensor.zeros([2, 3]))) {
            XCTAssertEqual($0 as? EchoStateNetworkError,
                           .shapeMismatch(argument: "targets", expected: "[2, 2] or [2, 4, 2]", actual: [2, 3]))
        }
        XCTAssertThrowsError(try esn.fitReadout(inputs: input, targets: Tensor.zeros([2, 5, 2]))) {
            XCTAssertEqual($0 as? EchoStateNetworkError,
                           .shapeMismatch(argument: "targets", expected: "[2, 2] or [2, 4, 2]", actual: [2, 5, 2]))
        }
        XCTAssertThrowsError(try esn.fitReadout(inputs: input, targets: Tensor.zeros([2, 4, 2]), washout: 4)) {
            XCTAssertEqual($0 as? EchoStateNetworkError, .invalidWashout(4, timeSteps: 4))
        }
        XCTAssertThrowsError(try esn.fitReadout(inputs: input, targets: Tensor.zeros([2, 2]), ridge: -1)) {
            XCTAssertEqual($0 as? EchoStateNetworkError, .invalidRidge(-1))
        }
        XCTAssertThrowsError(try esn.fitReadout(states: Tensor.zeros([2, 4, 6]), targets: Tensor.zeros([2, 2]))) {
            XCTAssertEqual($0 as? EchoStateNetworkError,
                           .shapeMismatch(argument: "states", expected: "[batch, time ≥ 1, 5]", actual: [2, 4, 6]))
        }
        XCTAssertThrowsError(try esn.readout(of: Tensor.zeros([3, 4]))) {
            XCTAssertEqual($0 as? EchoStateNetworkError,
                           .shapeMismatch(argument: "states", expected: "[batch, 5] or [batch, time, 5]", actual: [3, 4]))
        }
        XCTAssertThrowsError(try esn.outputShape(forInputShape: [4, 2])) {
            XCTAssertEqual($0 as? ShapeError, ShapeError(layer: "EchoStateNetwork", message: "built for 3 features, got 2"))
        }
        XCTAssertThrowsError(try esn.build(inputShape: [4])) {
            XCTAssertEqual($0 as? ShapeError, ShapeError(layer: "EchoStateNetwork", message: "expects input [time, features], got [4]"))
        }
    }
}
