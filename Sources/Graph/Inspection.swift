import Foundation

/// What kind of node a recorded entry is.
public enum NodeKind: Equatable, Sendable {
    /// A ``Parameter``, with its name.
    case parameter(String)
    /// Data that receives no gradient.
    case constant
    /// Data that receives a gradient.
    case variable
    /// The result of an operation.
    case operation
}

/// One recorded node, as graph inspection reports it.
public struct NodeInfo: Equatable, Sendable {
    /// The node's position on the tape (its topological order).
    public let index: Int
    /// The op's name (`"matmul"`, `"tanh"`, `"parameter"`, ...).
    public let op: String
    /// The shape of the node's value.
    public let shape: [Int]
    /// The indices of the nodes this one was computed from.
    public let inputs: [Int]
    /// Whether it is a parameter, a constant, a variable or an operation.
    public let kind: NodeKind
    /// The scope label active when it was recorded (`"lstm/t3"`; empty when none).
    public let scope: String
}

extension Tape {
    /// Every recorded node, in recording order.
    public var nodes: [NodeInfo] {
        records.enumerated().map { index, record in
            let kind: NodeKind
            switch record.op {
            case .parameter: kind = .parameter(record.parameter?.name ?? "parameter")
            case .constant: kind = .constant
            case .variable: kind = .variable
            default: kind = .operation
            }
            return NodeInfo(index: index, op: record.op.name, shape: record.value.shape,
                            inputs: record.inputs, kind: kind, scope: record.scope)
        }
    }

    /// The number of recorded nodes per op name.
    public var opCounts: [String: Int] {
        records.reduce(into: [:]) { counts, record in counts[record.op.name, default: 0] += 1 }
    }

    /// The number of scalars the tape keeps alive for the backward pass (every node's value;
    /// views that share a buffer with another node are counted once per node).
    public var savedScalarCount: Int {
        records.reduce(0) { $0 + $1.value.count }
    }

    /// The most scalars held for the backward pass at once during the last one: those of
    /// ``savedScalarCount`` plus the largest tape a checkpoint rebuilt (``checkpoint(_:body:)``).
    public var peakSavedScalarCount: Int {
        let recomputed = records.reduce(0) { largest, record in
            if case .checkpoint(let function) = record.op { return max(largest, function.recomputedScalarCount) }
            return largest
        }
        return savedScalarCount + recomputed
    }

    /// The floating-point operations of the recorded matrix products, forward and backward.
    ///
    /// Forward, each product `op(A)·op(B)` of `[m, k]` by `[k, n]` costs `2·m·n·k`; backward, each input
    /// that needs a gradient costs one more product of the same size. Element-wise work is not counted:
    /// this is the "useful" work benchmarks divide by time to compare with the machine's peak.
    public var matrixProductFLOPs: (forward: Int, backward: Int) {
        var forward = 0, backward = 0
        for record in records {
            guard case .matmul(let transposeA, _) = record.op else { continue }
            let a = records[record.inputs[0]].value.shape
            let k = transposeA ? a[0] : a[1]
            let flops = 2 * record.value.count * k
            forward += flops
            for input in record.inputs where records[input].needsGradient { backward += flops }
        }
        return (forward, backward)
    }

    /// Returns the recorded graph in Graphviz DOT: one node per record (parameters as boxes,
    /// constants and variables as ellipses, ops as rounded boxes, with shapes on the labels), one
    /// edge per input, and a cluster per scope label, or, given the ``Plan`` compiled from this tape, a
    /// cluster per fused forward kernel (the records that run as one sweep).
    public func dot(name: String = "unroll", plan: Plan? = nil) -> String {
        var lines = ["digraph \(quoted(name)) {", "  rankdir=TB;", "  node [fontname=\"Helvetica\", fontsize=10];"]
        var clusters: [String: [String]] = [:]
        var scopeOrder: [String] = []
        var kernelOf: [Int: String] = [:]
        for (number, kernel) in (plan?.kernels ?? []).enumerated() where kernel.kind == .fused && !kernel.isBackward {
            for node in kernel.nodes {
                kernelOf[node] = "kernel \(number): fused sweep of \(kernel.nodes.count) records"
            }
        }
        for info in nodes {
            let shapeText = "[" + info.shape.map(String.init).joined(separator: ", ") + "]"
            let attributes: String
            switch info.kind {
            case .parameter(let name):
                attributes = "label=\(quoted("\(name)\n\(shapeText)")), shape=box, style=filled, fillcolor=\"#ffd580\""
            case .constant:
                attributes = "label=\(quoted("constant\n\(shapeText)")), shape=ellipse, color=gray"
            case .variable:
                attributes = "label=\(quoted("variable\n\(shapeText)")), shape=ellipse, style=filled, fillcolor=\"#cde8ff\""
            case .operation:
                attributes = "label=\(quoted("\(info.op)\n\(shapeText)")), shape=box, style=rounded"
            }
            let line = "n\(info.index) [\(attributes)];"
            let cluster = plan == nil ? info.scope : (kernelOf[info.index] ?? "")
            if cluster.isEmpty || info.kind != .operation {
                lines.append("  " + line)
            } else {
                if clusters[cluster] == nil { scopeOrder.append(cluster) }
                clusters[cluster, default: []].append(line)
            }
        }
        for (number, scope) in scopeOrder.enumerated() {
            lines.append("  subgraph cluster_\(number) {")
            lines.append("    label=\(quoted(scope));")
            for line in clusters[scope]! { lines.append("    " + line) }
            lines.append("  }")
        }
        for info in nodes {
            for input in info.inputs { lines.append("  n\(input) -> n\(info.index);") }
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    private func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }
}
