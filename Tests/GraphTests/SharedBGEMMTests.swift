@testable import Graph
import Kernels
import TestSupport
import XCTest

/// Products that share their right operand run as one GEMM, their rows stacked into one packed left operand (`sharedGEMM`,
/// `unroll_sgemm_stacked_b`): each product that `gemm` runs from a packed `op(A)` must keep the bits of its own
/// `unroll_sgemm` and `gemm` call, the smaller ones and the row sums (`1ᵀ·B`) their values, for every thread count, and
/// a plan must merge an LSTM's weight and bias gradients into one such kernel.
final class SharedBGEMMTests: XCTestCase {
    /// One left operand (stored `[m, k]`, or `[k, m]` read transposed) and its `C`, row strides padded by `pad`.
    private struct Left {
        let transposeA: Bool, m: Int, lda: Int, ldc: Int, a: [Float], c: [Float]
        init(transposeA: Bool, m: Int, n: Int, k: Int, pad: Int, random: inout SeededFloats) {
            (self.transposeA, self.m) = (transposeA, m)
            lda = (transposeA ? m : k) + pad
            ldc = n + pad
            a = random.array((transposeA ? k : m) * lda)
            c = random.array(m * ldc)
        }

        /// A row of ones (no `a`) with `other`'s shape and `C`.
        init(onesLike other: Left) {
            (transposeA, m, lda, ldc, a, c) = (true, 1, 1, other.ldc, [], other.c)
        }

        /// `op(A)[i, p]`, or 1 for a row of ones (no `a`).
        func element(_ i: Int, _ p: Int) -> Double {
            a.isEmpty ? 1 : Double(transposeA ? a[p * lda + i] : a[i * lda + p])
        }
    }

    /// `got` against `op(A)·op(B) + beta·C` summed in doubles: within 1e-6 of the largest magnitude, and the padding
    /// columns of `C` untouched.
    private func assertProduct(_ got: [Float], _ left: Left, n: Int, k: Int, b: [Float], ldb: Int, transposeB: Bool,
                               beta: Float, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        var expected = [Double](repeating: 0, count: left.m * n)
        for i in 0..<left.m {
            for j in 0..<n {
                var sum = Double(beta) * Double(left.c[i * left.ldc + j])
                for p in 0..<k { sum += left.element(i, p) * Double(transposeB ? b[j * ldb + p] : b[p * ldb + j]) }
                expected[i * n + j] = sum
            }
        }
        let scale = Swift.max(1e-6, expected.map(Swift.abs).max() ?? 0)
        var worst = 0.0
        for i in 0..<left.m {
            for j in 0..<left.ldc {
                if j >= n {
                    XCTAssertEqual(got[i * left.ldc + j], left.c[i * left.ldc + j], "\(label): padding written",
                                   file: file, line: line)
                } else {
                    worst = Swift.max(worst, Swift.abs(Double(got[i * left.ldc + j]) - expected[i * n + j]) / scale)
                }
            }
        }
        XCTAssertLessThanOrEqual(worst, 1e-6, label, file: file, line: line)
    }

    /// Ragged rows and columns, K in one block and over two or three, A transposed or not, B transposed or not, beta 0
    /// and 1, padded strides, thread counts 1, 2, 3 and 7, with a row sum (no `a`) and small products stacked beside
    /// the large ones: the large keep their bits, the others their values, every thread count the same bits.
    func testSharedProductsKeepTheBitsOfSeparateCalls() {
        var random = SeededFloats(state: 31)
        // The third case's last left operand takes a skinny path alone, and the fourth case's N is one column block
        // (no product leads): those are stacked anyway, with their values.
        let cases: [(transposeB: Bool, n: Int, k: Int, lefts: [(Bool, Int)])] = [
            (false, 1000, 600, [(true, 64), (true, 150), (false, 37), (true, 1)]),
            (false, 200, 1100, [(true, 7), (false, 53), (true, 23)]),
            (true, 130, 513, [(false, 45), (true, 97), (false, 12)]),
            (false, 75, 257, [(true, 145), (true, 30)]),
        ]
        var sharedCounts: [Int] = []
        for (index, test) in cases.enumerated() {
            let ldb = (test.transposeB ? test.k : test.n) + index % 2 * 3
            let b = random.array((test.transposeB ? test.n : test.k) * ldb)
            for beta: Float in [0, 1] {
                var lefts = test.lefts.enumerated().map { j, left in
                    Left(transposeA: left.0, m: left.1, n: test.n, k: test.k, pad: (index + j) % 3 * 2, random: &random)
                }
                let ones = Left(onesLike: Left(transposeA: true, m: 1, n: test.n, k: test.k, pad: 1, random: &random))
                lefts.insert(ones, at: index % lefts.count)
                let leads = lefts.map {
                    !$0.a.isEmpty && sharesRightOperandPacking(transposeA: $0.transposeA, transposeB: test.transposeB,
                                                               m: $0.m, n: test.n, k: test.k)
                }
                sharedCounts.append(leads.filter { $0 }.count)
                var first: [[Float]]?
                for threads in [2, 1, 3, 7] {
                    var outputs = lefts.map(\.c)
                    var alone = lefts.map(\.c)
                    GEMMThreads.withCount(threads) {
                        let targets = outputs.indices.map { j in
                            UnsafeMutablePointer<Float>.allocate(capacity: outputs[j].count)
                        }
                        defer { targets.forEach { $0.deallocate() } }
                        for j in lefts.indices { targets[j].initialize(from: lefts[j].c, count: lefts[j].c.count) }
                        let aPointers = lefts.map { left -> UnsafeMutablePointer<Float>? in
                            guard !left.a.isEmpty else { return nil }
                            let p = UnsafeMutablePointer<Float>.allocate(capacity: left.a.count)
                            p.initialize(from: left.a, count: left.a.count)
                            return p
                        }
                        defer { aPointers.forEach { $0?.deallocate() } }
                        sharedGEMM(transposeB: test.transposeB, n: test.n, k: test.k, b: b, ldb: ldb,
                                   lefts: lefts.indices.map { j in
                                       SharedGEMMLeft(transposeA: lefts[j].transposeA, m: lefts[j].m,
                                                      a: aPointers[j].map { UnsafePointer($0) }, lda: lefts[j].lda,
                                                      beta: beta, c: targets[j], ldc: lefts[j].ldc)
                                   })
                        for j in lefts.indices {
                            outputs[j] = Array(UnsafeBufferPointer(start: targets[j], count: lefts[j].c.count))
                            guard leads[j], let a = aPointers[j] else { continue }
                            alone[j].withUnsafeMutableBufferPointer { c in
                                gemm(transposeA: lefts[j].transposeA, transposeB: test.transposeB, m: lefts[j].m, n: test.n,
                                     k: test.k, a: a, lda: lefts[j].lda, b: b, ldb: ldb, beta: beta,
                                     c: c.baseAddress!, ldc: lefts[j].ldc)
                            }
                        }
                    }
                    for j in lefts.indices {
                        let label = "case \(index) left \(j) beta \(beta) threads \(threads)"
                        if leads[j] {
                            var expected = lefts[j].c
                            unroll_sgemm(lefts[j].transposeA ? 1 : 0, test.transposeB ? 1 : 0, lefts[j].m, test.n, test.k,
                                         1, lefts[j].a, lefts[j].lda, b, ldb, beta, &expected, lefts[j].ldc)
                            assertSameBits(outputs[j], expected, label + " vs unroll_sgemm")
                            assertSameBits(outputs[j], alone[j], label + " vs gemm")
                        } else if threads == 2 {
                            assertProduct(outputs[j], lefts[j], n: test.n, k: test.k, b: b, ldb: ldb,
                                          transposeB: test.transposeB, beta: beta, label)
                        }
                    }
                    if let first {
                        XCTAssertEqual(outputs.map { $0.map(\.bitPattern) }, first.map { $0.map(\.bitPattern) },
                                       "case \(index) beta \(beta): \(threads) threads give other bits than 2")
                    } else {
                        first = outputs
                    }
                }
            }
        }
        XCTAssertEqual(sharedCounts, [3, 3, 3, 3, 2, 2, 0, 0], "not the operands meant to lead the shared path")
    }

    /// A product packed once (`unroll_sgemm_pack_a`, the stacked entry's single-part case) over uneven column ranges
    /// (multiples of 16), one call per range and one call over them all (K blocks outermost, an empty block among
    /// them), gets `unroll_sgemm`'s bits and writes nothing outside its columns.
    func testPackedLeftOperandOverColumnRanges() {
        var random = SeededFloats(state: 47)
        let (n, k) = (250, 700)
        let b = random.array(k * n)
        let lefts = [Left(transposeA: true, m: 40, n: n, k: k, pad: 1, random: &random),
                     Left(transposeA: false, m: 151, n: n, k: k, pad: 0, random: &random)]
        for beta: Float in [0, 1] {
            for (j, left) in lefts.enumerated() {
                let packed = UnsafeMutablePointer<Float>.allocate(capacity: unroll_sgemm_packed_a_size(left.m, k))
                defer { packed.deallocate() }
                unroll_sgemm_pack_a(left.transposeA ? 1 : 0, left.m, k, left.a, left.lda, 0, left.m, packed)
                var byRange = left.c, inOneCall = left.c
                let edges = [0, 48, 48, 160, 250]
                XCTAssertEqual(unroll_sgemm_prepacked_a_blocks(0, left.m, k, 1, packed, b, n, edges, 4, beta, &inOneCall,
                                                               left.ldc), 1)
                for (n0, n1) in [(0, 48), (48, 160), (160, 250)] {
                    XCTAssertEqual(unroll_sgemm_prepacked_a(0, left.m, k, 1, packed, b, n, n0, n1, beta, &byRange, left.ldc), 1)
                }
                var expected = left.c
                unroll_sgemm(left.transposeA ? 1 : 0, 0, left.m, n, k, 1, left.a, left.lda, b, n, beta, &expected, left.ldc)
                assertSameBits(byRange, expected, "left \(j) beta \(beta)")
                assertSameBits(inOneCall, expected, "left \(j) beta \(beta), blocks in one call")
            }
        }
    }

    /// The C entries over panel ranges packed apart and uneven column ranges (multiples of 16), one call per range and
    /// one over them all: a large product gets `unroll_sgemm`'s bits, a one-row product and a row sum sharing its last
    /// panel their values, and nothing outside each product's columns is written.
    func testStackedEntriesOverPanelAndColumnRanges() {
        var random = SeededFloats(state: 47)
        let (n, k) = (250, 700)
        let b = random.array(k * n)
        let lefts = [Left(transposeA: true, m: 40, n: n, k: k, pad: 1, random: &random),
                     Left(transposeA: false, m: 151, n: n, k: k, pad: 0, random: &random),
                     Left(transposeA: true, m: 1, n: n, k: k, pad: 2, random: &random),
                     Left(onesLike: Left(transposeA: true, m: 1, n: n, k: k, pad: 3, random: &random))]
        for beta: Float in [0, 1] {
            var outputs = lefts.map(\.c)
            let aPointers = lefts.map { left -> UnsafeMutablePointer<Float>? in
                guard !left.a.isEmpty else { return nil }
                let p = UnsafeMutablePointer<Float>.allocate(capacity: left.a.count)
                p.initialize(from: left.a, count: left.a.count)
                return p
            }
            let targets = lefts.map { left -> UnsafeMutablePointer<Float> in
                let p = UnsafeMutablePointer<Float>.allocate(capacity: left.c.count)
                p.initialize(from: left.c, count: left.c.count)
                return p
            }
            defer {
                aPointers.forEach { $0?.deallocate() }
                targets.forEach { $0.deallocate() }
            }
            let parts = lefts.indices.map { j in
                unroll_sgemm_stacked_part(m: lefts[j].m, trans_a: lefts[j].transposeA ? 1 : 0,
                                          a: aPointers[j].map { UnsafePointer($0) }, lda: lefts[j].lda, beta: beta,
                                          c: targets[j], ldc: lefts[j].ldc, zero_k: 0)
            }
            let size = unroll_sgemm_stacked_a_size(parts.count, parts, k)
            XCTAssertEqual(size, unroll_sgemm_packed_a_size(193, k))
            let packed = UnsafeMutablePointer<Float>.allocate(capacity: size)
            defer { packed.deallocate() }
            packed.initialize(repeating: .nan, count: size)
            // Panels 0..<10 and 10..<33: the boundary falls inside the second part, the last panel holds parts 2-4.
            unroll_sgemm_pack_stacked_a(parts.count, parts, k, 10, 33, packed)
            unroll_sgemm_pack_stacked_a(parts.count, parts, k, 0, 10, packed)
            for (n0, n1) in [(0, 48), (48, 160), (160, 250)] {
                XCTAssertEqual(unroll_sgemm_stacked_b(parts.count, parts, packed, 0, n, k, 1, b, n, n0, n1), 1)
            }
            for j in lefts.indices {
                outputs[j] = Array(UnsafeBufferPointer(start: targets[j], count: lefts[j].c.count))
                targets[j].update(from: lefts[j].c, count: lefts[j].c.count)
            }
            // The same column blocks in one call, the K blocks outermost, an empty block among them: the same bits.
            XCTAssertEqual(unroll_sgemm_stacked_b_blocks(parts.count, parts, packed, 0, n, k, 1, b, n, [0, 48, 48, 160, 250],
                                                         4), 1)
            for j in lefts.indices {
                assertSameBits(Array(UnsafeBufferPointer(start: targets[j], count: lefts[j].c.count)), outputs[j],
                               "left \(j) beta \(beta), blocks in one call")
            }
            for (j, left) in lefts.enumerated() where left.m > 1 {
                var expected = left.c
                unroll_sgemm(left.transposeA ? 1 : 0, 0, left.m, n, k, 1, left.a, left.lda, b, n, beta, &expected, left.ldc)
                assertSameBits(outputs[j], expected, "left \(j) beta \(beta)")
            }
            for (j, left) in lefts.enumerated() {
                assertProduct(outputs[j], left, n: n, k: k, b: b, ldb: n, transposeB: false, beta: beta,
                              "left \(j) beta \(beta)")
            }
        }
    }

    // MARK: Plans

    static let hidden = 32, features = 40, batch = 16, steps = 8

    func makeParameters() -> [Parameter] {
        let n = Self.hidden
        return [[Self.features, 4 * n], [n, 4 * n], [4 * n]].enumerated().map { k, shape in
            Parameter("p\(k)", Tensor.randomUniform(shape, in: -0.3...0.3, seed: 310 + UInt64(k)))
        }
    }

    func input(_ seed: UInt64) -> Tensor {
        Tensor.randomUniform([Self.steps * Self.batch, Self.features], in: -1...1, seed: seed)
    }

    /// An LSTM over time-major stacked inputs, its input projection one product over all steps: the weight
    /// gradients `Xᵀ·D` and `Hᵀ·D` both read the projection's gradient D.
    func record(_ parameters: [Parameter], _ value: Tensor) -> (Tape, Node, Node, Node) {
        let n = Self.hidden, batch = Self.batch
        let tape = Tape()
        let x = tape.variable(value)
        let p = parameters.map { tape.parameter($0) }
        let projection = matmul(x, p[0]) + p[2]
        var h = tape.constant(Tensor.zeros([batch, n])), c = tape.constant(Tensor.zeros([batch, n]))
        for t in 0..<Self.steps {
            let gates = projection.slice(along: 0, (t * batch)..<((t + 1) * batch)) + matmul(h, p[1])
            let i = sigmoid(gates.slice(along: 1, 0..<n)), f = sigmoid(gates.slice(along: 1, n..<(2 * n)))
            let g = tanh(gates.slice(along: 1, (2 * n)..<(3 * n))), o = sigmoid(gates.slice(along: 1, (3 * n)..<(4 * n)))
            c = f * c + i * g
            h = o * tanh(c)
        }
        return (tape, x, h, (h * h).sum())
    }

    func replay(threads: Int, times: Int = 1) -> (bits: [[[UInt32]]], plan: Plan) {
        GEMMThreads.withCount(threads) {
            let parameters = makeParameters()
            let (tape, x, h, loss) = record(parameters, input(1))
            let plan = Plan(tape: tape, inputs: [x], outputs: [h, loss], differentiating: loss)
            plan.isProfiling = true
            let bits = (0..<times).map { _ in
                for parameter in parameters { parameter.gradient = nil }
                let values = plan.replay([input(2)])
                return (values + parameters.map { $0.gradient! }).map { $0.scalars.map(\.bitPattern) }
            }
            return (bits, plan)
        }
    }

    func testLSTMWeightGradientsRunAsOneSharedKernelWithEagerValues() {
        let (two, plan) = replay(threads: 2, times: 3)
        let kernels = plan.kernels
        let rows = Self.steps * Self.batch, columns = 4 * Self.hidden
        let shared = kernels.indices.filter { kernels[$0].kind == .sharedMatmul }
        XCTAssertEqual(shared.count, 1, plan.summary)
        guard let index = shared.first else { return }
        // Xᵀ·D, Hᵀ·D and the bias gradient's row sum 1ᵀ·D.
        XCTAssertEqual(kernels[index].flops, 2 * (Self.features + Self.hidden + 1) * columns * rows, plan.summary)
        XCTAssertEqual(kernels[index].nodes.count, 3)
        XCTAssertFalse(kernels.contains { $0.kind == .copy && $0.isBackward && $0.flops == rows * columns },
                       "the bias gradient still runs alone:\n\(plan.summary)")
        XCTAssertFalse(kernels.contains { $0.kind == .stackedMatmul && $0.flops >= 2 * Self.hidden * columns * rows },
                       "a weight gradient still runs alone:\n\(plan.summary)")
        XCTAssertEqual(plan.profile!.kernels[index].runs, 3)
        XCTAssertTrue(plan.summary.contains("sharedMatmul"))

        XCTAssertEqual(two[0], two[1], "replays differ")
        XCTAssertEqual(two[0], two[2], "replays differ")
        let (one, _) = replay(threads: 1)
        let (seven, _) = replay(threads: 7)
        XCTAssertEqual(one[0], two[0], "the thread count changed bits")
        XCTAssertEqual(seven[0], two[0], "the thread count changed bits")

        let parameters = makeParameters()
        let (tape, _, h, loss) = record(parameters, input(2))
        tape.backward(from: loss)
        let eager = [h.value, loss.value] + parameters.map { $0.gradient! }
        for (k, (bits, expected)) in zip(two[0], eager).enumerated() {
            assertClose(Tensor(shape: expected.shape, scalars: bits.map(Float.init(bitPattern:))), expected,
                        tolerance: 1e-6, "output \(k)")
        }
    }
}
