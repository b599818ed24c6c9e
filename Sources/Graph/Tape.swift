/// An append-only record of the operations run on ``Node``s, for reverse-mode differentiation.
///
/// Operations record in the order they run, which is already a topological order, so
/// ``backward(from:seed:)`` is one reverse loop over the records: no recursion and no hashing,
/// however many time steps a network unrolls into.
///
/// ```swift
/// let tape = Tape()
/// let x = tape.variable(Tensor([[1, 2]]))
/// let w = tape.parameter(weight)
/// let loss = (tanh(matmul(x, w))).sum()
/// tape.backward(from: loss)          // weight.gradient now holds dloss/dweight
/// ```
public final class Tape {
    struct Record {
        let op: Op
        let inputs: [Int]
        let value: Tensor
        let needsGradient: Bool
        let scope: String
        let parameter: Parameter?
    }

    private(set) var records: [Record] = []
    private var parameterIndices: [ObjectIdentifier: Int] = [:]
    private var scopes: [String] = []
    private var currentScope = ""
    private var retained: Set<Int> = []
    /// Weight-gradient products `aᵀ·g` owed to a leaf, summed in one matrix product when the sweep reaches it.
    private var deferredProducts: [Int: [(a: Tensor, g: Tensor)]] = [:]
    var gradients: [Tensor?] = []
    private(set) var generation = 0
    /// Parameters reused as right operands of products, packed once per generation (Tape+PackedOperands).
    var packedOperands = PackedOperandCache()

    /// Whether layers behave as in training (dropout active). Inference runs without a tape.
    public var isTraining: Bool

    /// Creates an empty tape.
    public init(isTraining: Bool = true) {
        self.isTraining = isTraining
    }

    /// The number of recorded nodes.
    public var count: Int { records.count }

    // MARK: Leaves

    /// Records data that receives no gradient.
    public func constant(_ value: Tensor) -> Node {
        append(.constant, inputs: [], value: value, needsGradient: false)
    }

    /// Records data whose gradient ``gradient(of:)`` returns after ``backward(from:seed:)``.
    public func variable(_ value: Tensor) -> Node {
        append(.variable, inputs: [], value: value, needsGradient: true)
    }

    /// Records a parameter (once per tape: later calls return the same node).
    public func parameter(_ parameter: Parameter) -> Node {
        let key = ObjectIdentifier(parameter)
        if let index = parameterIndices[key] {
            return Node(value: records[index].value, tape: self, index: index, generation: generation)
        }
        let node = append(.parameter, inputs: [], value: parameter.value,
                          needsGradient: parameter.isTrainable, parameter: parameter)
        parameterIndices[key] = node.index
        return node
    }

    // MARK: Recording

    func append(_ op: Op, inputs: [Int], value: Tensor, needsGradient: Bool, parameter: Parameter? = nil) -> Node {
        let index = records.count
        records.append(Record(op: op, inputs: inputs, value: value, needsGradient: needsGradient,
                              scope: currentScope, parameter: parameter))
        return Node(value: value, tape: self, index: index, generation: generation)
    }

    /// Forgets every record but keeps the storage, so a training loop can reuse one tape per step
    /// without reallocating. Nodes recorded before are invalid afterwards (using one traps).
    public func removeAll() {
        records.removeAll(keepingCapacity: true)
        gradients.removeAll(keepingCapacity: true)
        parameterIndices.removeAll(keepingCapacity: true)
        retained.removeAll(keepingCapacity: true)
        packedOperands.removeAll()
        scopes.removeAll()
        currentScope = ""
        generation += 1
    }

    /// Traps unless `node` was recorded on this tape since the last ``removeAll()``.
    func check(_ node: Node, _ context: String) {
        Graph.check(node.tape === self, "\(context): the node is not on this tape")
        Graph.check(node.generation == generation, "\(context): the node was recorded before the tape was cleared")
    }

    /// Records `op` with `inputs`, all of which must be on this tape or untaped (recorded as constants).
    func record(_ op: Op, _ inputs: [Node], value: Tensor) -> Node {
        var indices = [Int]()
        indices.reserveCapacity(inputs.count)
        var needsGradient = false
        for input in inputs {
            let index = index(of: input, for: op)
            indices.append(index)
            needsGradient = needsGradient || records[index].needsGradient
        }
        if case .stopGradient = op { needsGradient = false }
        // A checkpoint's body may lift parameters, which want gradients even when no input does.
        if case .checkpoint = op { needsGradient = true }
        return append(op, inputs: indices, value: value, needsGradient: needsGradient)
    }

    /// Records a one- or two-input `op` without building an array of nodes.
    func record(_ op: Op, _ a: Node, _ b: Node?, value: Tensor) -> Node {
        let first = index(of: a, for: op)
        var needsGradient = records[first].needsGradient
        var inputs = [first]
        if let b {
            let second = index(of: b, for: op)
            needsGradient = needsGradient || records[second].needsGradient
            inputs.append(second)
        }
        if case .stopGradient = op { needsGradient = false }
        return append(op, inputs: inputs, value: value, needsGradient: needsGradient)
    }

    private func index(of input: Node, for op: Op) -> Int {
        guard input.tape != nil else { return constant(input.value).index }
        check(input, op.name)
        return input.index
    }

    // MARK: Scopes

    /// Runs `body` with nodes labelled by `name`, nested under the enclosing scopes (`"lstm/t3"`).
    public func withScope<R>(_ name: String, _ body: () throws -> R) rethrows -> R {
        scopes.append(name)
        currentScope = scopes.joined(separator: "/")
        defer {
            scopes.removeLast()
            currentScope = scopes.joined(separator: "/")
        }
        return try body()
    }

    // MARK: Backward

    /// Keeps the gradient of an intermediate node after backward, for ``gradient(of:)``.
    public func retainGradient(of node: Node) {
        check(node, "retainGradient(of:)")
        retained.insert(node.index)
    }

    /// Propagates gradients from `root` to every node it depends on, in one reverse sweep.
    ///
    /// The seed defaults to ones (the usual choice for a scalar loss). Parameters receive their
    /// gradients (added to any they already hold); variables and retained nodes keep theirs for
    /// ``gradient(of:)``; all other intermediate gradients are freed as soon as they are used.
    public func backward(from root: Node, seed: Tensor? = nil) {
        backward(from: [root], seeds: [seed ?? Tensor(shape: root.shape, repeating: 1)])
    }

    /// Propagates gradients from several roots at once, each seeded with its own gradient (summed where
    /// a node is given twice), in one reverse sweep from the latest root.
    public func backward(from roots: [Node], seeds: [Tensor]) {
        Graph.check(roots.count == seeds.count && !roots.isEmpty, "backward(from:seeds:): \(roots.count) roots and \(seeds.count) seeds")
        gradients.removeAll(keepingCapacity: true)
        gradients.append(contentsOf: repeatElement(nil, count: records.count))
        for (root, seed) in zip(roots, seeds) {
            check(root, "backward(from:)")
            Graph.check(seed.shape == root.shape, "backward(from:): seed shape \(seed.shape) differs from root \(root.shape)")
            if gradients[root.index] == nil { gradients[root.index] = seed } else { gradients[root.index]!.add(seed) }
        }
        deferredProducts.removeAll(keepingCapacity: true)
        for index in stride(from: roots.map(\.index).max()!, through: 0, by: -1) {
            if !deferredProducts.isEmpty, let products = deferredProducts.removeValue(forKey: index) {
                accumulateProducts(products, into: index)
            }
            guard let gradient = gradients[index] else { continue }
            let record = records[index]
            if record.op.isLeaf {
                if let parameter = record.parameter, record.needsGradient {
                    parameter.accumulateGradient(gradient)
                    gradients[index] = nil
                }
                continue
            }
            if record.needsGradient { propagate(index, gradient) }
            if !retained.contains(index) { gradients[index] = nil }
        }
    }

    /// Returns the gradient of a variable or retained node from the last backward pass (zeros if none flowed).
    public func gradient(of node: Node) -> Tensor {
        check(node, "gradient(of:)")
        if node.index < gradients.count, let gradient = gradients[node.index] { return gradient }
        return Tensor.zeros(node.shape)
    }

    /// Adds `gradient` into the gradient of node `index`, summing it back to the node's shape first
    /// when the node was broadcast: the one place broadcasting is undone.
    func accumulate(_ gradient: Tensor, into index: Int) {
        let record = records[index]
        guard record.needsGradient else { return }
        let reduced = gradient.shape == record.value.shape ? gradient : gradient.sum(toShape: record.value.shape)
        if gradients[index] == nil {
            gradients[index] = reduced
        } else {
            gradients[index]!.add(reduced)
        }
    }

    /// Whether node `index` wants a gradient.
    func wantsGradient(_ index: Int) -> Bool { records[index].needsGradient }

    /// Adds `op(a) · op(b)` into node `index`'s gradient, in place when it already has one. `bIndex` names
    /// the record whose value `b` is, if any, so that a reused parameter's packed form serves the product.
    func accumulateMatmul(_ a: Tensor, _ b: Tensor, transposingA: Bool, transposingB: Bool, into index: Int,
                          bIndex: Int? = nil) {
        guard records[index].needsGradient else { return }
        // A weight used at every time step receives Σₜ aₜᵀ gₜ. Summing it as one product over the stacked
        // rows, when the sweep reaches the weight, reads and writes the gradient once instead of once per
        // step, and gives the kernel a long inner dimension instead of many short ones.
        if transposingA && !transposingB && records[index].op.isLeaf {
            deferredProducts[index, default: []].append((a, b))
            return
        }
        addProduct(a, b, transposingA: transposingA, transposingB: transposingB, into: index, bIndex: bIndex)
    }

    /// Adds `op(a) · op(b)` into node `index`'s gradient, in place (one GEMM with beta 1) when it has one.
    private func addProduct(_ a: Tensor, _ b: Tensor, transposingA: Bool, transposingB: Bool, into index: Int,
                            bIndex: Int? = nil) {
        if gradients[index] == nil {
            gradients[index] = product(a, b, transposingA: transposingA, transposingB: transposingB, bIndex: bIndex)
        } else {
            var target = gradients[index]!
            gradients[index] = nil
            let m = transposingA ? a.shape[1] : a.shape[0]
            if let bIndex, let packed = packedOperand(bIndex, transposed: transposingB, rows: m) {
                target.addMatmul(a, packed, transposingA: transposingA)
            } else {
                target.addMatmul(a, b, transposingA: transposingA, transposingB: transposingB)
            }
            gradients[index] = target
        }
    }

    /// Adds `Σ aᵢᵀ gᵢ` into node `index`'s gradient as one product of the row-stacked operands, stacked in
    /// recording order (a recurrent layer's time order; `products` come in backward order). Compiled plans stack
    /// them the same way, so that both sum in one order, and there the gradients of a projection's time steps
    /// then lie in the order the product reads them.
    private func accumulateProducts(_ backwardOrder: [(a: Tensor, g: Tensor)], into index: Int) {
        let products = backwardOrder.reversed()
        let a = products.count == 1 ? products.first!.a : Tensor.concatenate(products.map(\.a), along: 0)
        let g = products.count == 1 ? products.first!.g : Tensor.concatenate(products.map(\.g), along: 0)
        addProduct(a, g, transposingA: true, transposingB: false, into: index)
    }

    /// Adds `gradient` into the region `range` along `axis` of node `index`'s gradient.
    func accumulateSlice(_ gradient: Tensor, axis: Int, range: Range<Int>, into index: Int) {
        guard records[index].needsGradient else { return }
        let shape = records[index].value.shape
        var target = gradients[index] ?? Tensor.zeros(shape)
        gradients[index] = nil
        let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
        let rowIn = shape[axis] * inner, rowOut = range.count * inner
        let source = gradient.base
        target.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress! + range.lowerBound * inner
            for o in 0..<outer {
                let y = base + o * rowIn, x = source + o * rowOut
                for i in 0..<rowOut { y[i] += x[i] }
            }
        }
        gradients[index] = target
    }
}
