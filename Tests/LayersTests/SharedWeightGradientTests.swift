import Graph
import Layers
import TestSupport
import XCTest

/// A recurrent layer's weight and bias gradients read the same stacked gate gradients D: a compiled plan runs
/// `Hᵀ·D`, `Xᵀ·D` and the bias row sum `1ᵀ·D` as one shared kernel (D read once), within 1e-6 of eager execution,
/// bitwise the same on every replay and for 1, 2, 3 and 7 threads.
final class SharedWeightGradientTests: XCTestCase {
    static let batch = 16, steps = 32

    /// Records the layer on `input`, a squared-sum loss on its last state.
    private func record(_ layer: Layer, _ input: Tensor) -> (Tape, Node, Node, Node) {
        let tape = Tape()
        let x = tape.variable(input)
        let output = layer(x)
        return (tape, x, output, (output * output).sum())
    }

    private func input(features: Int, seed: UInt64) -> Tensor {
        Tensor.randomUniform([Self.batch, Self.steps, features], in: -1...1, seed: seed)
    }

    /// The plan's kernels and, for each thread count, the bits of the outputs, the input gradient and every
    /// parameter gradient (two replays at each count).
    private func replays(_ layer: Layer, features: Int) -> (plan: Plan, bits: [Int: [[UInt32]]]) {
        let (tape, x, output, loss) = record(layer, input(features: features, seed: 1))
        let plan = Plan(tape: tape, inputs: [x], outputs: [output, loss], differentiating: loss, gradients: [x])
        var bits: [Int: [[UInt32]]] = [:]
        for threads in [2, 1, 3, 7] {
            for _ in 0..<2 {
                let replayed = GEMMThreads.withCount(threads) { () -> [[UInt32]] in
                    layer.parameters.forEach { $0.gradient = nil }
                    return (plan.replay([input(features: features, seed: 2)]) + layer.parameters.map { $0.gradient! })
                        .map { $0.scalars.map(\.bitPattern) }
                }
                if let earlier = bits[threads] {
                    XCTAssertEqual(replayed, earlier, "two replays with \(threads) threads differ")
                }
                if let two = bits[2] { XCTAssertEqual(replayed, two, "\(threads) threads give other bits than 2") }
                bits[threads] = replayed
            }
        }
        return (plan, bits)
    }

    private func assertMatchesEager(_ layer: Layer, features: Int, bits: [[UInt32]], _ label: String) {
        layer.parameters.forEach { $0.gradient = nil }
        let (tape, x, output, loss) = record(layer, input(features: features, seed: 2))
        tape.backward(from: loss)
        let eager = [output.value, loss.value, tape.gradient(of: x)] + layer.parameters.map { $0.gradient! }
        for (k, (got, expected)) in zip(bits, eager).enumerated() {
            assertClose(Tensor(shape: expected.shape, scalars: got.map(Float.init(bitPattern:))), expected,
                        tolerance: 1e-6, "\(label) result \(k)")
        }
    }

    /// The backward kernels that read all of D: what must have joined a shared kernel.
    private func assertJoined(_ plan: Plan, sharedFLOPs: Int, sharedCount: Int, sharedNodes: Int, alone: Int = 0, biasSum: Int,
                              file: StaticString = #filePath, line: UInt = #line) {
        let kernels = plan.kernels
        let shared = kernels.filter { $0.kind == .sharedMatmul }
        XCTAssertEqual(shared.count, sharedCount, plan.summary, file: file, line: line)
        XCTAssertEqual(shared.reduce(0) { $0 + $1.flops }, sharedFLOPs, plan.summary, file: file, line: line)
        XCTAssertEqual(shared.reduce(0) { $0 + $1.nodes.count }, sharedNodes, plan.summary, file: file, line: line)
        XCTAssertEqual(kernels.filter { $0.kind == .stackedMatmul }.count, alone,
                       "weight gradients running alone:\n\(plan.summary)", file: file, line: line)
        XCTAssertFalse(kernels.contains { $0.kind == .copy && $0.isBackward && $0.flops == biasSum },
                       "a bias gradient sums all steps alone:\n\(plan.summary)", file: file, line: line)
        XCTAssertTrue(plan.summary.contains("sharedMatmul"), file: file, line: line)
    }

    /// seed-lstm's shape in small: one input feature, so `Xᵀ·D` is a single row and rides in `Hᵀ·D`'s panels.
    func testLSTMWeightAndBiasGradientsRunAsOneKernel() throws {
        let hidden = 48, features = 1
        let layer = LSTM(hiddenSize: hidden, seed: 5)
        try layer.build(inputShape: [Self.steps, features])
        let (plan, bits) = replays(layer, features: features)
        let rows = Self.batch * Self.steps, gates = 4 * hidden
        assertJoined(plan, sharedFLOPs: 2 * (hidden + features + 1) * gates * rows, sharedCount: 1, sharedNodes: 3,
                     biasSum: rows * gates)
        assertMatchesEager(layer, features: features, bits: bits[2]!, "LSTM")
    }

    /// gru-long's shape in small (8 features). With reset after, the input projection has its own bias: `Xᵀ·Dx` and
    /// `1ᵀ·Dx` join; the recurrent kernel's gradient `Hᵀ·Dh` reads another D (stacked from the steps' gradients,
    /// whose bias gradient each step sums as it goes) and runs alone.
    func testGRUWeightAndBiasGradientsRunAsSharedKernels() throws {
        let hidden = 48, features = 8
        let layer = GRU(hiddenSize: hidden, seed: 6)
        try layer.build(inputShape: [Self.steps, features])
        let (plan, bits) = replays(layer, features: features)
        let rows = Self.batch * Self.steps, gates = 3 * hidden
        assertJoined(plan, sharedFLOPs: 2 * (features + 1) * gates * rows, sharedCount: 1, sharedNodes: 2, alone: 1,
                     biasSum: rows * gates)
        assertMatchesEager(layer, features: features, bits: bits[2]!, "GRU")
    }
}
