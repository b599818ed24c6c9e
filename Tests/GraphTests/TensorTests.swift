import Graph
import TestSupport
import XCTest

/// Known answers for the tensor kernels.
final class TensorTests: XCTestCase {
    func testCreationAndAccess() {
        let t = Tensor([[1, 2, 3], [4, 5, 6]])
        XCTAssertEqual(t.shape, [2, 3])
        XCTAssertEqual(t[1, 2], 6)
        XCTAssertEqual(Tensor.zeros([2, 2]).scalars, [0, 0, 0, 0])
        XCTAssertEqual(Tensor.ones([3]).scalars, [1, 1, 1])
        XCTAssertEqual(Tensor(scalar: 4).shape, [])
    }

    func testValueSemantics() {
        let a = Tensor([1, 2, 3])
        var b = a
        b[0] = 9
        XCTAssertEqual(a.scalars, [1, 2, 3])
        XCTAssertEqual(b.scalars, [9, 2, 3])
        var view = Tensor([[1, 2], [3, 4]]).slice(along: 0, 1..<2)
        view[0, 1] = 7
        XCTAssertEqual(view.scalars, [3, 7])
    }

    func testSeededRandomIsReproducible() {
        let a = Tensor.randomUniform([100], in: -1...1, seed: 42)
        XCTAssertEqual(a, Tensor.randomUniform([100], in: -1...1, seed: 42))
        XCTAssertNotEqual(a, Tensor.randomUniform([100], in: -1...1, seed: 43))
        XCTAssertTrue(a.scalars.allSatisfy { $0 >= -1 && $0 <= 1 })
        // SplitMix64's published first output for seed 0.
        var generator = SeededGenerator(seed: 0)
        XCTAssertEqual(generator.next(), 0xE220_A839_7B1D_CDAF)
        let normal = Tensor.randomNormal([20000], seed: 1).scalars
        let mean = normal.reduce(0, +) / Float(normal.count)
        let variance = normal.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(normal.count)
        XCTAssertEqual(mean, 0, accuracy: 0.03)
        XCTAssertEqual(variance, 1, accuracy: 0.05)
    }

    func testBroadcastingArithmetic() {
        let a = Tensor([[1, 2, 3], [4, 5, 6]])
        XCTAssertEqual((a + Tensor([10, 20, 30])).scalars, [11, 22, 33, 14, 25, 36])
        XCTAssertEqual((a * Tensor([[2], [3]])).scalars, [2, 4, 6, 12, 15, 18])
        XCTAssertEqual((a - 1).scalars, [0, 1, 2, 3, 4, 5])
        XCTAssertEqual((2 / Tensor([1, 4])).scalars, [2, 0.5])
        XCTAssertEqual((-a).scalars, [-1, -2, -3, -4, -5, -6])
    }

    func testMatmulAndTranspose() {
        let a = Tensor([[1, 2], [3, 4], [5, 6]])
        let b = Tensor([[1, 0, 2], [0, 1, 3]])
        XCTAssertEqual(a.matmul(b).scalars, [1, 2, 8, 3, 4, 18, 5, 6, 28])
        XCTAssertEqual(a.transposed().scalars, [1, 3, 5, 2, 4, 6])
        XCTAssertEqual(a.matmul(a, transposingSelf: true), Tensor([[35, 44], [44, 56]]))
        XCTAssertEqual(b.matmul(b, transposingOther: true), Tensor([[5, 6], [6, 10]]))
        let batched = matmul(Tensor(shape: [2, 1, 2], scalars: [1, 2, 3, 4]), Tensor([[1, 1], [0, 1]]))
        XCTAssertEqual(batched.shape, [2, 1, 2])
        XCTAssertEqual(batched.scalars, [1, 3, 3, 7])
    }

    func testLargeMatmulMatchesNaiveProduct() {
        let a = Tensor.randomUniform([67, 131], in: -1...1, seed: 1), b = Tensor.randomUniform([131, 45], in: -1...1, seed: 2)
        let x = a.scalars, y = b.scalars
        var expected = [Float](repeating: 0, count: 67 * 45)
        for i in 0..<67 { for j in 0..<45 { var s: Double = 0; for p in 0..<131 { s += Double(x[i * 131 + p] * y[p * 45 + j]) }; expected[i * 45 + j] = Float(s) } }
        assertClose(a.matmul(b), shape: [67, 45], expected, tolerance: 1e-5, "67x131x45")
        assertClose(a.transposed().matmul(b, transposingSelf: true), shape: [67, 45], expected, tolerance: 1e-5, "Aᵀ")
        assertClose(a.matmul(b.transposed(), transposingOther: true), shape: [67, 45], expected, tolerance: 1e-5, "Bᵀ")
    }

    func testShapeOps() {
        let t = Tensor(shape: [2, 3, 2], scalars: (0..<12).map(Float.init))
        XCTAssertEqual(t.reshaped(to: [3, -1]).shape, [3, 4])
        XCTAssertEqual(t.slice(along: 1, 1..<2).scalars, [2, 3, 8, 9])
        XCTAssertEqual(t.slice(along: 0, 1..<2).scalars, [6, 7, 8, 9, 10, 11])
        XCTAssertEqual(t.transposed(permutation: [1, 0, 2]).scalars, [0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11])
        let joined = Tensor.concatenate([Tensor([[1], [2]]), Tensor([[3, 4], [5, 6]])], along: 1)
        XCTAssertEqual(joined.scalars, [1, 3, 4, 2, 5, 6])
    }

    func testReductions() {
        let t = Tensor([[1, 2, 3], [4, 5, 6]])
        XCTAssertEqual(t.sum(alongAxes: [0]).scalars, [5, 7, 9])
        XCTAssertEqual(t.sum(alongAxes: [1], keepingDimensions: true).shape, [2, 1])
        XCTAssertEqual(t.sum(alongAxes: [1]).scalars, [6, 15])
        XCTAssertEqual(t.sum().scalar, 21)
        XCTAssertEqual(t.mean().scalar, 3.5)
        XCTAssertEqual(t.max(alongAxis: 1).scalars, [3, 6])
        XCTAssertEqual(Tensor([[1, 9, 3], [7, 5, 6]]).argmax(alongAxis: 1), [1, 0])
        XCTAssertEqual(t.sum(toShape: [1, 3]).scalars, [5, 7, 9])
    }

    func testStableSoftmax() {
        let t = Tensor([[1000, 1001, 1002], [-5, 0, 5]])
        let s = t.softmax(alongAxis: 1)
        assertClose(s, shape: [2, 3], [0.09003057, 0.24472847, 0.66524096, 4.5094e-5, 0.0066925, 0.9932621], tolerance: 1e-5)
        assertClose(t.logSoftmax(alongAxis: 1), shape: [2, 3], [-2.4076061, -1.4076061, -0.4076061, -10.006715, -5.006715, -0.006715], tolerance: 1e-5)
    }

    func testTranscendentalsMatchLibm() {
        let x = Tensor((0..<2001).map { Float($0 - 1000) / 50 })
        let values = x.scalars
        for (name, tensor, reference) in [
            ("exp", x.exp(), values.map { Foundation.exp(Double($0)) }),
            ("tanh", x.tanh(), values.map { Foundation.tanh(Double($0)) }),
            ("sigmoid", x.sigmoid(), values.map { 1 / (1 + Foundation.exp(-Double($0))) }),
        ] {
            for (i, value) in tensor.scalars.enumerated() {
                let expected = reference[i]
                // The kernels' documented bounds (Sources/Kernels/vmath.c): relative error <= 2e-7 everywhere.
                XCTAssertLessThanOrEqual(Swift.abs(Double(value) - expected), 2e-7 * Swift.abs(expected), "\(name)(\(values[i]))")
            }
        }
        XCTAssertEqual(Tensor([-30, 30, 9.5, -9.5]).tanh().scalars, [-1, 1, 1, -1])
        XCTAssertEqual(Tensor([-200, 200]).sigmoid().scalars, [0, 1])
        XCTAssertTrue(Tensor([Float.nan]).tanh().scalar.isNaN)
        XCTAssertTrue(Tensor([Float.nan]).sigmoid().scalar.isNaN)
        // Tiny inputs come back unchanged from tanh; sigmoid keeps subnormal results (exp(-100) = 3.72e-44).
        let subnormal = Float.leastNormalMagnitude / 1024
        XCTAssertEqual(Tensor([subnormal, -1e-30]).tanh().scalars, [subnormal, -1e-30])
        XCTAssertEqual(Double(Tensor([-100]).sigmoid().scalar), 3.720076e-44, accuracy: 1.5e-45)
    }

    func testTranscendentalLanesDoNotDependOnTheirNeighbours() {
        // Extreme values send their whole 8-lane vector down a slower path; the other lanes' bits must not change
        // (a compiled plan splits rows into tiles differently for different thread counts).
        let values = (0..<64).map { Float($0 - 32) / 3 }
        var mixed = values
        for i in stride(from: 0, to: mixed.count, by: 5) { mixed[i] = [-100, 100, -.infinity, .nan][i / 5 % 4] }
        let functions: [(String, (Tensor) -> Tensor)] = [("tanh", { $0.tanh() }), ("sigmoid", { $0.sigmoid() }), ("exp", { $0.exp() })]
        for (name, op) in functions {
            let alone = op(Tensor(values)).scalars, together = op(Tensor(mixed)).scalars
            for i in values.indices where i % 5 != 0 {
                XCTAssertEqual(alone[i].bitPattern, together[i].bitPattern, "\(name)(\(values[i]))")
            }
        }
    }

    // MARK: Selection and statistics

    func testGatheringAlongEachAxis() {
        let x = Tensor(shape: [2, 3, 2], scalars: (0..<12).map(Float.init))
        assertClose(x.gathering([1, 1, 0], along: 0), shape: [3, 3, 2],
                    [6, 7, 8, 9, 10, 11, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5], tolerance: 0)
        assertClose(x.gathering([2, 0], along: 1), shape: [2, 2, 2], [4, 5, 0, 1, 10, 11, 6, 7], tolerance: 0)
        assertClose(x.gathering([1], along: 2), shape: [2, 3, 1], [1, 3, 5, 7, 9, 11], tolerance: 0)
    }

    func testWindowsWithStride() {
        let series = Tensor(shape: [7, 2], scalars: (0..<14).map(Float.init))
        // (7 − 3) / 2 + 1 = 3 windows starting at rows 0, 2, 4.
        assertClose(series.windows(length: 3, stride: 2), shape: [3, 3, 2],
                    [0, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13], tolerance: 0)
        assertClose(Tensor([1, 2, 3]).windows(length: 3, stride: 5), shape: [1, 3], [1, 2, 3], tolerance: 0)
    }

    func testOneHotIgnoresIndicesOutOfRange() {
        assertClose(Tensor([[2, 0], [5, -1]]).oneHot(classes: 3), shape: [2, 2, 3],
                    [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0], tolerance: 0)
        assertClose(Tensor([1.7, .nan]).oneHot(classes: 2), shape: [2, 2], [0, 1, 0, 0], tolerance: 0)
    }

    func testFirstNonFiniteIndex() {
        XCTAssertNil(Tensor([1, -2, 3]).firstNonFiniteIndex)
        XCTAssertEqual(Tensor([1, .infinity, .nan]).firstNonFiniteIndex, 1)
        XCTAssertEqual(Tensor([[0, 0], [0, .nan]]).firstNonFiniteIndex, 3)
        // 37 elements: four 8-lane blocks, then a 5-element tail; the largest finite values must not count.
        var scalars = (0..<37).map { Float($0 % 2 == 0 ? 1 : -1) * .greatestFiniteMagnitude }
        XCTAssertNil(Tensor(scalars).firstNonFiniteIndex)
        for (index, bad) in [(35, Float.infinity), (20, -.infinity), (9, .nan)] {
            scalars[index] = bad
            XCTAssertEqual(Tensor(scalars).firstNonFiniteIndex, index, "\(bad) at \(index)")
        }
    }

    func testMinimumAndColumnMoments() {
        let x = Tensor([[1, -4], [3, 2], [-2, 8]])
        assertClose(x.min(alongAxis: 0), shape: [2], [-2, -4], tolerance: 0)
        assertClose(x.min(alongAxis: 1), shape: [3], [-4, 2, -2], tolerance: 0)
        let (means, variances) = x.columnMeansAndVariances()
        XCTAssertEqual(means[0], 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(means[1], 2, accuracy: 1e-12)
        // Column 0: deviations 1/3, 7/3, −8/3 → (1 + 49 + 64) / 27; column 1: 36, 0, 36 → 24.
        XCTAssertEqual(variances[0], 114.0 / 27, accuracy: 1e-12)
        XCTAssertEqual(variances[1], 24, accuracy: 1e-12)
    }
}

