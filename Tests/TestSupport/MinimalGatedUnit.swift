import Graph

/// Records a minimal gated unit over `inputs` on their tape, from the zero state, and returns the last state:
/// f = σ(x W_f + h U_f + b_f), ĥ = tanh(x W_h + (f ⊙ h) U_h + b_h), h' = (1 − f) ⊙ h + f ⊙ ĥ, with
/// `parameters` = [W (features × 2·hidden), U_f, U_h (hidden × hidden), b (2·hidden)]. Plan tests use it as a
/// user's cell: its two recurrent weights' gradients are independent products over all steps.
public func recordMinimalGatedUnit(inputs: [Node], parameters: [Node], batch: Int, hidden n: Int) -> Node {
    guard let tape = inputs.first?.tape else { fatalError("recordMinimalGatedUnit: no inputs") }
    var h = tape.constant(Tensor.zeros([batch, n]))
    for x in inputs {
        let xw = matmul(x, parameters[0]) + parameters[3]
        let f = sigmoid(xw.slice(along: 1, 0..<n) + matmul(h, parameters[1]))
        let candidate = tanh(xw.slice(along: 1, n..<(2 * n)) + matmul(f * h, parameters[2]))
        h = (1 - f) * h + f * candidate
    }
    return h
}
