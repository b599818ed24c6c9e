@testable import Graph
import Kernels
import TestSupport
import XCTest

/// Products that share their right operand run as one GEMM packing each block of it once (`sharedGEMM`,
/// `unroll_sgemm_shared_b`): each product must keep the bits of its own `unroll_sgemm` and `gemm` call, for every
/// thread count, and a plan must merge an LSTM's input- and recurrent-weight gradients into one such kernel.
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
    }

    private func assertSameBits(_ got: [Float], _ expected: [Float], _ label: String,
                                file: StaticString = #filePath, line: UInt = #line) {
        let first = got.indices.first { got[$0].bitPattern != expected[$0].bitPattern }
        XCTAssertNil(first, "\(label): first differing float at \(first ?? -1)", file: file, line: line)
    }

    /// Ragged rows and columns, K in one block and over two or three, A transposed or not, B transposed or not, beta 0
    /// and 1, padded strides, thread counts 1, 2, 3 and 7; operands too small to share (or taking a skinny path) run
    /// alone beside the shared ones.
    func testSharedProductsKeepTheBitsOfSeparateCalls() {
        var random = SeededFloats(state: 31)
        // The last left operand of the third case takes a skinny path, and the fourth case's N is one column block:
        // those run through `gemm` alone.
        let cases: [(transposeB: Bool, n: Int, k: Int, lefts: [(Bool, Int)])] = [
            (false, 1000, 600, [(true, 64), (true, 150), (false, 37)]),
            (false, 200, 1100, [(true, 7), (false, 53), (true, 23)]),
            (true, 130, 513, [(false, 45), (true, 97), (false, 12)]),
            (false, 75, 257, [(true, 145), (true, 30)]),
        ]
        var sharedCounts: [Int] = []
        for (index, test) in cases.enumerated() {
            let ldb = (test.transposeB ? test.k : test.n) + index % 2 * 3
            let b = random.array((test.transposeB ? test.n : test.k) * ldb)
            for beta: Float in [0, 1] {
                let lefts = test.lefts.enumerated().map { j, left in
                    Left(transposeA: left.0, m: left.1, n: test.n, k: test.k, pad: (index + j) % 3 * 2, random: &random)
                }
                sharedCounts.append(lefts.filter {
                    sharesRightOperandPacking(transposeA: $0.transposeA, transposeB: test.transposeB, m: $0.m, n: test.n,
                                              k: test.k)
                }.count)
                let expected = lefts.map { left -> [Float] in
                    var out = left.c
                    unroll_sgemm(left.transposeA ? 1 : 0, test.transposeB ? 1 : 0, left.m, test.n, test.k, 1, left.a,
                                 left.lda, b, ldb, beta, &out, left.ldc)
                    return out
                }
                for threads in [1, 2, 3, 7] {
                    var outputs = lefts.map(\.c)
                    var alone = lefts.map(\.c)
                    GEMMThreads.withCount(threads) {
                        let targets = outputs.indices.map { j in
                            UnsafeMutablePointer<Float>.allocate(capacity: outputs[j].count)
                        }
                        defer { targets.forEach { $0.deallocate() } }
                        for j in lefts.indices { targets[j].initialize(from: lefts[j].c, count: lefts[j].c.count) }
                        let aPointers = lefts.map { left in
                            let p = UnsafeMutablePointer<Float>.allocate(capacity: left.a.count)
                            p.initialize(from: left.a, count: left.a.count)
                            return p
                        }
                        defer { aPointers.forEach { $0.deallocate() } }
                        sharedGEMM(transposeB: test.transposeB, n: test.n, k: test.k, b: b, ldb: ldb,
                                   lefts: lefts.indices.map { j in
                                       SharedGEMMLeft(transposeA: lefts[j].transposeA, m: lefts[j].m, a: aPointers[j],
                                                      lda: lefts[j].lda, beta: beta, c: targets[j], ldc: lefts[j].ldc)
                                   })
                        for j in lefts.indices {
                            outputs[j] = Array(UnsafeBufferPointer(start: targets[j], count: lefts[j].c.count))
                            alone[j].withUnsafeMutableBufferPointer { c in
                                gemm(transposeA: lefts[j].transposeA, transposeB: test.transposeB, m: lefts[j].m, n: test.n,
                                     k: test.k, a: aPointers[j], lda: lefts[j].lda, b: b, ldb: ldb, beta: beta,
                                     c: c.baseAddress!, ldc: lefts[j].ldc)
                            }
                        }
                    }
                    for j in lefts.indices {
                        let label = "case \(index) left \(j) beta \(beta) threads \(threads)"
                        assertSameBits(outputs[j], expected[j], label + " vs unroll_sgemm")
                        assertSameBits(outputs[j], alone[j], label + " vs gemm")
                    }
                }
            }
        }
        XCTAssertEqual(sharedCounts, [3, 3, 3, 3, 2, 2, 0, 0], "not the operands meant to take the shared path")
    }

    /// The C entry over uneven column ranges (multiples of 16), one call per range and one call over them all (K
    /// blocks outermost, an empty block among them), gives each product `unroll_sgemm`'s bits and writes nothing
    /// outside its columns.
    func testSharedEntryOverColumnRanges() {
        var random = SeededFloats(state: 47)
        let (n, k) = (250, 700)
        let b = random.array(k * n)
        let lefts = [Left(transposeA: true, m: 40, n: n, k: k, pad: 1, random: &random),
                     Left(transposeA: false, m: 151, n: n, k: k, pad: 0, random: &random)]
        for beta: Float in [0, 1] {
            let packed = lefts.map { left -> UnsafeMutablePointer<Float> in
                let panels = UnsafeMutablePointer<Float>.allocate(capacity: unroll_sgemm_packed_a_size(left.m, k))
                unroll_sgemm_pack_a(left.transposeA ? 1 : 0, left.m, k, left.a, left.lda, 0, left.m, panels)
                return panels
            }
            defer { packed.forEach { $0.deallocate() } }
            var first = lefts[0].c, second = lefts[1].c
            var firstInOneCall = first, secondInOneCall = second
            firstInOneCall.withUnsafeMutableBufferPointer { c0 in
                secondInOneCall.withUnsafeMutableBufferPointer { c1 in
                    let arguments = [
                        unroll_sgemm_shared_left(m: 40, packed_a: packed[0], beta: beta, c: c0.baseAddress,
                                                 ldc: lefts[0].ldc),
                        unroll_sgemm_shared_left(m: 151, packed_a: packed[1], beta: beta, c: c1.baseAddress,
                                                 ldc: lefts[1].ldc),
                    ]
                    let edges = [0, 48, 48, 160, 250]
                    XCTAssertEqual(unroll_sgemm_shared_b_blocks(2, arguments, 0, n, k, 1, b, n, edges, 4), 1)
                }
            }
            for (n0, n1) in [(0, 48), (48, 160), (160, 250)] {
                first.withUnsafeMutableBufferPointer { c0 in
                    second.withUnsafeMutableBufferPointer { c1 in
                        let arguments = [
                            unroll_sgemm_shared_left(m: 40, packed_a: packed[0], beta: beta, c: c0.baseAddress,
                                                     ldc: lefts[0].ldc),
                            unroll_sgemm_shared_left(m: 151, packed_a: packed[1], beta: beta, c: c1.baseAddress,
                                                     ldc: lefts[1].ldc),
                        ]
                        XCTAssertEqual(unroll_sgemm_shared_b(2, arguments, 0, n, k, 1, b, n, n0, n1), 1)
                    }
                }
            }
            let outputs = [first, second], inOneCall = [firstInOneCall, secondInOneCall]
            for (j, left) in lefts.enumerated() {
                var expected = left.c
                unroll_sgemm(left.transposeA ? 1 : 0, 0, left.m, n, k, 1, left.a, left.lda, b, n, beta, &expected, left.ldc)
                assertSameBits(outputs[j], expected, "left \(j) beta \(beta)")
                assertSameBits(inOneCall[j], expected, "left \(j) beta \(beta), blocks in one call")
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
        XCTAssertEqual(kernels[index].flops, 2 * (Self.features + Self.hidden) * columns * rows, plan.summary)
        XCTAssertEqual(kernels[index].nodes.count, 2)
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
