import Graph

/// An element-wise activation applied by a layer.
public enum Activation: String, Sendable, CaseIterable {
    /// The identity.
    case linear
    /// The hyperbolic tangent.
    case tanh
    /// The logistic sigmoid.
    case sigmoid
    /// `max(x, 0)`.
    case relu
    /// The softmax along the last axis.
    case softmax

    /// Returns the activation applied to `x`.
    public func callAsFunction(_ x: Node) -> Node {
        switch self {
        case .linear: x
        case .tanh: Graph.tanh(x)
        case .sigmoid: Graph.sigmoid(x)
        case .relu: Graph.relu(x)
        case .softmax: x.softmax(alongAxis: x.shape.count - 1)
        }
    }
}
