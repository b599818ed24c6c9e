@testable import Graph
import Kernels
import TestSupport
import XCTest

/// A product cut over K (``GEMMKSplit``: one partial per K block of the kernel, added in block order) gives
/// exactly `gemm`'s bits whichever order the blocks are computed in, and products that `gemm` would not run on
/// its blocked path, or that are too wide or too short, are not cut.
final class KSplitGEMMTests: XCTestCase {
    func testBlocksInAnyOrderGiveTheBitsOfGEMM() throws {
        var random = SeededFloats(state: 41)
        // (transposeA, transposeB, m, n, k, pad): the weight-gradient layout (Aᵀ·B) first, ragged M, N and K, and
        // all four transpose combinations; K over 2 to 7 blocks, the last one shorter.
        let shapes: [(Bool, Bool, Int, Int, Int, Int)] = [
            (true, false, 128, 128, 3200, 0), (true, false, 37, 53, 1029, 3), (false, false, 64, 80, 600, 0),
            (false, true, 50, 70, 1500, 2), (true, true, 30, 33, 513, 1), (true, false, 7, 200, 2049, 0),
        ]
        for (index, (transposeA, transposeB, m, n, k, pad)) in shapes.enumerated() {
            let split = try XCTUnwrap(GEMMKSplit(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k),
                                      "\(m)x\(n)x\(k)")
            XCTAssertEqual(split.blocks, (k + 511) / 512)
            let lda = (transposeA ? m : k) + pad, ldb = (transposeB ? k : n) + pad, ldc = n + pad
            let a = random.array((transposeA ? k : m) * lda), b = random.array((transposeB ? n : k) * ldb)
            for accumulating in [false, true] {
                let c = accumulating ? random.array(m * ldc) : [Float](repeating: .nan, count: m * ldc)
                var expected = c
                for threads in [1, 2, 3, 7] {
                    var out = c
                    GEMMThreads.withCount(threads) {
                        gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, lda: lda, b: b,
                             ldb: ldb, beta: accumulating ? 1 : 0, c: &out, ldc: ldc)
                    }
                    if threads == 1 { expected = out } else { XCTAssertEqual(out.map(\.bitPattern), expected.map(\.bitPattern)) }
                }
                var partials = [Float](repeating: .nan, count: split.partialCount)
                var got = c
                // Last block first, then the rest from the middle out: no order of computing may matter.
                let order = [split.blocks - 1] + (0..<(split.blocks - 1)).sorted { abs(2 * $0 - split.blocks) < abs(2 * $1 - split.blocks) }
                partials.withUnsafeMutableBufferPointer { buffer in
                    for block in order {
                        split.multiplyBlock(block, a: a, lda: lda, b: b, ldb: ldb, partials: buffer.baseAddress!)
                    }
                    got.withUnsafeMutableBufferPointer { out in
                        split.reduce(partials: buffer.baseAddress!, accumulating: accumulating, c: out.baseAddress!, ldc: ldc)
                    }
                }
                let label = "shape \(index) accumulating \(accumulating)"
                XCTAssertEqual(got.map(\.bitPattern), expected.map(\.bitPattern), label)
                // gemm's value is a product, not just any stable bits: against a double reference.
                for i in Swift.stride(from: 0, to: m, by: Swift.max(1, m / 5)) {
                    for j in Swift.stride(from: 0, to: n, by: Swift.max(1, n / 5)) {
                        var sum = accumulating ? Double(c[i * ldc + j]) : 0, magnitude = abs(sum)
                        for p in 0..<k {
                            let x = Double(transposeA ? a[p * lda + i] : a[i * lda + p])
                            let y = Double(transposeB ? b[j * ldb + p] : b[p * ldb + j])
                            sum += x * y
                            magnitude += abs(x * y)
                        }
                        XCTAssertEqual(Double(got[i * ldc + j]), sum, accuracy: 4e-7 * Double(k + 4) * magnitude, label)
                    }
                    // Padding columns of C stay untouched.
                    for j in n..<ldc { XCTAssertEqual(got[i * ldc + j].bitPattern, c[i * ldc + j].bitPattern, label) }
                }
            }
        }
    }

    func testShortWideAndSkinnyProductsAreNotCut() {
        XCTAssertNil(GEMMKSplit(transposeA: true, transposeB: false, m: 128, n: 128, k: 512), "one K block")
        XCTAssertNil(GEMMKSplit(transposeA: true, transposeB: false, m: 400, n: 1600, k: 4096), "wide output")
        XCTAssertNil(GEMMKSplit(transposeA: true, transposeB: false, m: 128, n: 384, k: 16000), "megabytes of partials")
        XCTAssertNil(GEMMKSplit(transposeA: true, transposeB: false, m: 1, n: 256, k: 3200), "one row")
        XCTAssertNil(GEMMKSplit(transposeA: false, transposeB: true, m: 20, n: 500, k: 3000), "skinny (dot products)")
        XCTAssertNil(GEMMKSplit(transposeA: false, transposeB: false, m: 200, n: 40, k: 3000), "split by rows")
        XCTAssertNotNil(GEMMKSplit(transposeA: true, transposeB: false, m: 128, n: 128, k: 513))
    }

    /// In a plan, a minimal gated unit over 40 steps has recurrent weight gradients with K = 16 · 39 = 624: the
    /// concurrent group cuts them into K blocks, and the replay keeps the bits of one thread for every count.
    func testPlanCutsLongWeightGradientsWithTheBitsOfOneThread() {
        let (hidden, features, batch, steps) = (32, 3, 16, 40)
        let shapes = [[features, 2 * hidden], [hidden, hidden], [hidden, hidden], [2 * hidden]]
        func parameters() -> [Parameter] {
            shapes.enumerated().map { k, shape in Parameter("p\(k)", Tensor.randomUniform(shape, in: -0.3...0.3, seed: 70 + UInt64(k))) }
        }
        func inputs(_ seed: UInt64) -> [Tensor] {
            (0..<steps).map { Tensor.randomUniform([batch, features], in: -1...1, seed: seed + UInt64($0)) }
        }
        func record(_ parameters: [Parameter], _ values: [Tensor]) -> (Tape, [Node], Node, Node) {
            let tape = Tape()
            let xs = values.map { tape.variable($0) }
            let h = recordMinimalGatedUnit(inputs: xs, parameters: parameters.map { tape.parameter($0) }, batch: batch,
                                           hidden: hidden)
            return (tape, xs, h, (h * h).sum())
        }
        var results: [[[UInt32]]] = []
        for threads in [1, 2, 3, 7] {
            let bits: [[UInt32]] = GEMMThreads.withCount(threads) {
                let weights = parameters()
                let (tape, xs, h, loss) = record(weights, inputs(10))
                let plan = Plan(tape: tape, inputs: xs, outputs: [h, loss], differentiating: loss)
                // The two recurrent weights' gradients ([hidden × K]·[K × hidden]), and any other long product.
                let splits = plan.concurrentGroups.flatMap(\.splits)
                let recurrent = splits.filter { $0.split.m == hidden && $0.split.n == hidden }
                XCTAssertEqual(recurrent.count, 2, plan.summary)
                XCTAssertTrue(recurrent.allSatisfy { $0.split.blocks == 2 && [batch * (steps - 1), batch * steps].contains($0.split.k) })
                for group in plan.concurrentGroups {
                    XCTAssertEqual(group.pieces.filter { $0.block >= 0 }.count, group.splits.reduce(0) { $0 + $1.split.blocks })
                    XCTAssertEqual(Set(group.pieces.map(\.kernel)), Set(group.kernels))
                }
                var replayed: [[UInt32]] = []
                for replay in 0..<2 {
                    for weight in weights { weight.gradient = nil }
                    let values = plan.replay(inputs(20))
                    let got = (values + weights.map { $0.gradient! }).map { $0.scalars.map(\.bitPattern) }
                    if replay == 0 { replayed = got } else { XCTAssertEqual(got, replayed, "a second replay changed bits") }
                }
                return replayed
            }
            results.append(bits)
        }
        for (index, bits) in results.enumerated().dropFirst() {
            XCTAssertEqual(bits, results[0], "threads \([1, 2, 3, 7][index]) changed bits")
        }
        let weights = parameters()
        let (tape, _, h, loss) = record(weights, inputs(20))
        tape.backward(from: loss)
        let eager = [h.value, loss.value] + weights.map { $0.gradient! }
        for (k, (bits, expected)) in zip(results[0], eager).enumerated() {
            assertClose(Tensor(shape: expected.shape, scalars: bits.map(Float.init(bitPattern:))), expected, tolerance: 1e-5,
                        "output \(k)")
        }
    }
}
