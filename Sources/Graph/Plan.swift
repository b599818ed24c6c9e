import Kernels

/// A recorded training step compiled into kernels over one preallocated arena, replayed without re-recording.
///
/// Record → fuse → plan → replay: the plan is derived from a ``Tape``'s records (the IR). Element-wise records
/// are fused into kernels that sweep their data once (forward, and once for their backward, whose formulas
/// come from the same rules as eager backward); a liveness pass gives every intermediate value and gradient
/// an offset in one arena, reused as soon as its last reader has run. Replaying runs the kernels in order.
///
/// What a replay reads, like `tf.function` or `jax.jit`:
/// - the `inputs` (the batch): their values are fed to ``replay(_:)``;
/// - every ``Parameter``: read live at each replay (an optimizer changes them), and its gradient is added to
///   ``Parameter/gradient`` as eager backward does;
/// - every other leaf (a constant, a zero state, a loss weight): frozen at its recorded value.
/// Static arguments of the recorded ops (shapes, slice ranges, gather indices) are frozen too, so a step whose
/// graph depends on data values (an embedding lookup's indices, a dropout mask) must not be compiled.
///
/// A plan owns its arena and scratch, so it replays on one thread at a time (its kernels use both cores).
///
/// ```swift
/// let tape = Tape()
/// let x = tape.constant(batch), y = tape.constant(targets)
/// let loss = square(model(x) - y).mean()
/// let plan = Plan(tape: tape, inputs: [x, y], outputs: [loss], differentiating: loss)
/// let values = plan.replay([nextBatch, nextTargets])   // the loss; parameters hold their gradients
/// ```
public final class Plan {
    /// Where a value or gradient lives: a buffer and a float offset into it.
    struct Location: Hashable {
        var buffer: Int
        var offset: Int
    }

    /// A buffer: a region of the arena, or memory owned by someone else (a fed input, a parameter, a constant).
    struct Buffer {
        enum Kind: Equatable {
            case arena, input(Int), parameter(Int), constant(Int)
            /// Parameter k's gradient tensor (``Plan/parameterGradients``): the plan writes the gradient where the
            /// handover finds it (see `Plan+ParameterGradients.swift`).
            case parameterGradient(Int)
        }
        var kind: Kind
        var count: Int
        var isGradient: Bool
        var nodes: [Int]
        var first = Int.max
        var last = -1
        var offset = 0
    }

    var storage: [Buffer] = []
    var steps: [Kernel] = []
    let inputShapes: [[Int]]
    var parameters: [Parameter] = []
    var constants: [Tensor] = []
    /// Parameters packed once per replay for the products that use them as right operands.
    var packedOperands: [PackedOperand] = []
    /// The locations of the requested outputs and of the requested gradients (read after the last kernel).
    var outputLocations: [(Location, [Int])] = []
    var gradientLocations: [(Location?, [Int])] = []
    /// The gradient of each parameter, kept between replays so that handing it over allocates nothing.
    var parameterGradients: [Tensor?] = []
    /// Runs of row-local kernels split by rows (see `Plan+Segments.swift`), and the segment starting at each kernel.
    var segments: [Segment] = []
    var segmentStarts: [Int?] = []
    /// Runs of independent kernels outside segments run at once (see `Plan+ConcurrentKernels.swift`), and the
    /// group starting at each kernel.
    var concurrentGroups: [ConcurrentGroup] = []
    var groupStarts: [Int?] = []
    /// The partials of the concurrent groups' products split over K (room for the largest group's), and the
    /// counter their threads take pieces from.
    var groupPartialCount = 0
    private(set) var groupPartials: UnsafeMutablePointer<Float>?
    let groupClaims = GroupClaims()
    /// Element-wise code and operand tables copied for the segments' parts, freed with the plan.
    var segmentAllocations: [UnsafeMutableRawPointer] = []
    private var arena: UnsafeMutablePointer<Float>?
    var arenaCount = 0
    private(set) var scratch = ElementScratch()
    private var pointers: [UnsafeMutablePointer<Float>] = []
    /// Operand tables of the element-wise kernels, resolved at each replay.
    var operandTables: [[unroll_ew_operand]] = []
    /// The number of records in the traced tape, and how many kernels fusion saved.
    public let recordCount: Int
    /// The timings of replays while profiling (``isProfiling``), and the last profile after it stopped.
    var profiler: PlanProfiler?
    var finishedProfiler: PlanProfiler?

    /// Compiles the step recorded on `tape`.
    ///
    /// - Parameters:
    ///   - inputs: leaves whose values are fed at each replay, in the order ``replay(_:)`` takes them.
    ///   - outputs: nodes whose values ``replay(_:)`` returns.
    ///   - root: the node to differentiate (seeded with ones, like ``Tape/backward(from:seed:)``), or `nil`
    ///     for a forward-only plan.
    ///   - gradients: nodes whose gradients ``replay(_:)`` returns after the outputs (inputs, usually).
    ///   - fusing: whether element-wise records are fused (off: one kernel per record, for testing the fuser).
    public init(tape: Tape, inputs: [Node], outputs: [Node], differentiating root: Node? = nil,
                gradients: [Node] = [], fusing: Bool = true) {
        for node in inputs + outputs + gradients + (root.map { [$0] } ?? []) { tape.check(node, "Plan") }
        inputShapes = inputs.map(\.shape)
        recordCount = tape.count
        var lowering = PlanLowering(plan: self, records: tape.records, inputs: inputs.map(\.index), fusing: fusing)
        lowering.lower(outputs: outputs.map(\.index), root: root?.index, gradients: gradients.map(\.index))
        if !lowering.stackedProducts.isEmpty {
            // Lower again with the operands of each stacked weight-gradient product placed side by side, now that
            // the first lowering has shown which buffers they are: the product then reads them where they lie.
            let firstPass = storage
            (storage, steps, parameters, constants, packedOperands) = ([], [], [], [], [])
            var second = PlanLowering(plan: self, records: tape.records, inputs: inputs.map(\.index), fusing: fusing)
            second.placeStackedOperands(lowering.stackedProducts, firstPass: firstPass)
            second.lower(outputs: outputs.map(\.index), root: root?.index, gradients: gradients.map(\.index))
        }
        parameterGradients = Array(repeating: nil, count: parameters.count)
        if fusing {
            computeCheapProductsWhereRead()
            addOneColumnProductsIntoTheirReaders()
        }
        placeParameterGradients()
        shareRightOperands()
        formSegments()
        formConcurrentGroups()
        planMemory()
        arena = UnsafeMutableRawPointer.allocate(byteCount: max(arenaCount, 16) * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: max(arenaCount, 16))
        scratch.reserve(steps.reduce(16) { max($0, $1.scratchCount) })
        if groupPartialCount > 0 {
            groupPartials = UnsafeMutableRawPointer.allocate(byteCount: groupPartialCount * 4, alignment: 64)
                .bindMemory(to: Float.self, capacity: groupPartialCount)
        }
        pointers = Array(repeating: arena!, count: storage.count)
        operandTables = steps.map { step in
            if case .elementwise(_, let operands, _, _) = step.work {
                return Array(repeating: unroll_ew_operand(base: arena!, row_stride: 0, column_stride: 0), count: operands.count)
            }
            return []
        }
    }

    deinit {
        arena.map { UnsafeMutableRawPointer($0).deallocate() }
        groupPartials.map { UnsafeMutableRawPointer($0).deallocate() }
        scratch.release()
        releaseSegments()
    }

    /// Packs the reused right operands for this replay's products: the larger ones (a recurrent kernel and its
    /// transpose) on both cores at once, each operand on one.
    private func packOperands() {
        let jobs = packedOperands.map { operand in
            let value = parameters[operand.parameter].value, matrix = operand.matrix
            return UncheckedSendable(value: (operand.transposed, matrix.rows, matrix.columns, value.base, value.shape[1],
                                             matrix.storage.pointer))
        }
        let bytes = packedOperands.reduce(0) { $0 + $1.matrix.byteCount }
        let pack: @Sendable (Int) -> Void = { k in
            let (transposed, rows, columns, source, stride, target) = jobs[k].value
            unroll_sgemm_pack_b(transposed ? 1 : 0, rows, columns, source, stride, target)
        }
        if jobs.count > 1 && bytes >= Plan.parallelPackingBytes {
            forkJoin(iterations: jobs.count, pack)
        } else {
            for k in jobs.indices { pack(k) }
        }
    }

    /// Packed bytes from which the operands are packed on several cores (below it a fork costs more than it saves).
    static let parallelPackingBytes = 1 << 20

    /// Runs the plan on new values of its inputs (same shapes as traced) and returns the outputs' values, then
    /// the requested gradients. Parameters' gradients are added to ``Parameter/gradient``.
    public func replay(_ inputs: [Tensor]) -> [Tensor] {
        guard inputs.map(\.shape) == inputShapes else {
            checkFailed("Plan.replay: input shapes \(inputs.map(\.shape)) differ from the traced \(inputShapes)")
        }
        for (b, buffer) in storage.enumerated() {
            switch buffer.kind {
            case .arena: pointers[b] = arena! + buffer.offset
            case .input(let k): pointers[b] = inputs[k].base
            case .parameter(let k): pointers[b] = parameters[k].value.base
            case .constant(let k): pointers[b] = constants[k].base
            case .parameterGradient(let k): pointers[b] = parameterGradientStorage(k)
            }
        }
        let start = profiler == nil ? 0 : PlanProfiler.now()
        packOperands()
        return withExtendedLifetime(inputs) {
            if let profiler {
                profiler.packingNanoseconds &+= PlanProfiler.now() &- start
                runProfiled(profiler)
            } else {
                var index = 0
                while index < steps.count {
                    if let segment = segmentStarts[index] {
                        runSegment(segment)
                        index = segments[segment].kernels.upperBound
                    } else if let group = groupStarts[index] {
                        runConcurrentGroup(group)
                        index = concurrentGroups[group].kernels.upperBound
                    } else {
                        execute(index)
                        index += 1
                    }
                }
            }
            let values = outputLocations.map { location, shape in copy(location, shape: shape) }
            let gradients = gradientLocations.map { location, shape in
                location.map { copy($0, shape: shape) } ?? Tensor.zeros(shape)
            }
            if let profiler {
                profiler.replays += 1
                profiler.replayNanoseconds &+= PlanProfiler.now() &- start
            }
            return values + gradients
        }
    }

    private func copy(_ location: Location, shape: [Int]) -> Tensor {
        let result = Tensor(uninitializedShape: shape)
        result.base.update(from: address(location), count: result.count)
        return result
    }

    @inline(__always)
    func address(_ location: Location) -> UnsafeMutablePointer<Float> { pointers[location.buffer] + location.offset }

    func execute(_ index: Int) {
        switch steps[index].work {
        case .elementwise(let program, let operands, let rows, let columns):
            for (k, operand) in operands.enumerated() {
                operandTables[index][k] = unroll_ew_operand(base: address(operand.location), row_stride: operand.layout.rowStride,
                                                            column_stride: operand.layout.columnStride)
            }
            operandTables[index].withUnsafeBufferPointer { table in
                runElementProgram(program, operands: table.baseAddress!, rows: rows, columns: columns, scratch: scratch.buffers)
            }
        case .matmul(let product):
            let row = product.row.map { UnsafePointer(address($0)) }
            if let packed = product.packed {
                let outer = product.outer.map { (x: UnsafePointer(address($0.x)), ldx: $0.ldx, w: UnsafePointer(address($0.w))) }
                packedGEMM(transposeA: product.transposeA, m: product.m, a: address(product.a), lda: product.lda,
                           packed: packedOperands[packed].matrix, beta: product.accumulating ? 1 : 0, row: row,
                           outer: outer, c: address(product.c), ldc: product.ldc)
                return
            }
            gemm(transposeA: product.transposeA, transposeB: product.transposeB, m: product.m, n: product.n, k: product.k,
                 a: address(product.a), lda: product.lda, b: address(product.b), ldb: product.ldb,
                 beta: product.accumulating ? 1 : 0, row: row, c: address(product.c), ldc: product.ldc)
        case .sharedMatmul(let products, let rowSums):
            let first = products[0]
            sharedGEMM(transposeB: first.transposeB, n: first.n, k: first.k, b: address(first.b), ldb: first.ldb,
                       lefts: products.map { product in
                           SharedGEMMLeft(transposeA: product.transposeA, m: product.m, a: address(product.a),
                                          lda: product.lda, beta: product.accumulating ? 1 : 0, c: address(product.c),
                                          ldc: product.ldc, zeroRows: product.zeroRows)
                       } + rowSums.map { sum in
                           SharedGEMMLeft(transposeA: true, m: 1, a: nil, lda: 1, beta: sum.accumulating ? 1 : 0,
                                          c: address(sum.target), ldc: sum.width)
                       })
        case .fill(let location, let count):
            address(location).update(repeating: 0, count: count)
        case .copyRows(let copy):
            Plan.copyRows(width: copy.width, sourceStride: copy.sourceStride, targetStride: copy.targetStride,
                          accumulating: copy.accumulating, rows: 0..<copy.rows, source: address(copy.source),
                          target: address(copy.target))
        case .rowSum(let sum):
            let source = address(sum.source), target = address(sum.target), width = sum.width
            if sum.broadcasting {
                Plan.broadcastRow(width: width, accumulating: sum.accumulating, rows: 0..<sum.rows, source: source,
                                  target: target)
                return
            }
            let total = sum.partial.map(address) ?? target
            total.update(repeating: 0, count: width)
            for row in 0..<sum.rows {
                let x = source + row * width
                for i in 0..<width { total[i] += x[i] }
            }
            if sum.partial != nil { for i in 0..<width { target[i] += total[i] } }
        case .permute(let move):
            let x = address(move.source), y = address(move.target)
            let outShape = move.permutation.map { move.shape[$0] }
            let inStrides = Tensor.strides(of: move.shape)
            let sourceStrides = move.permutation.map { inStrides[$0] }
            let inner = outShape.last ?? 1, innerStride = sourceStrides.last ?? 1, accumulating = move.accumulating
            guard outShape.reduce(1, *) > 0 else { return }
            forEachRow(shape: outShape, stridesA: sourceStrides, stridesB: sourceStrides) { source, _, target in
                if accumulating {
                    for i in 0..<inner { y[target + i] += x[source + i * innerStride] }
                } else {
                    for i in 0..<inner { y[target + i] = x[source + i * innerStride] }
                }
            }
        case .general(let general):
            let arguments = general.inputs.map { Tensor(borrowing: address($0.location), shape: $0.shape) }
            for (value, output) in zip(general.body(arguments), general.outputs) {
                guard let value else { continue }
                check(value.count == output.count, "Plan: kernel \(index) produced \(value.count) values, expected \(output.count)")
                let target = address(output.location)
                value.withUnsafeBufferPointer { source in
                    if output.accumulating {
                        for i in 0..<output.count { target[i] += source[i] }
                    } else {
                        target.update(from: source.baseAddress!, count: output.count)
                    }
                }
            }
        case .parameterGradient(let k, let location):
            let parameter = parameters[k]
            let source = address(location)
            if parameter.gradient == nil, case .parameterGradient = storage[location.buffer].kind {
                parameter.gradient = parameterGradients[k]  // written in place by the replay
            } else if parameter.gradient == nil {
                // Reuse last replay's tensor when nothing else holds it (the optimizer has cleared it).
                var gradient = parameterGradients[k] ?? Tensor(uninitializedShape: parameter.shape)
                parameterGradients[k] = nil
                gradient.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: source, count: $0.count) }
                parameterGradients[k] = gradient
                parameter.gradient = gradient
            } else {
                parameter.gradient!.withUnsafeMutableBufferPointer { target in
                    for i in target.indices { target[i] += source[i] }
                }
            }
        }
    }
}
