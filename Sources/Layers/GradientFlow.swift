import Graph

extension RNN {
    /// Returns `‖∂loss/∂h(t)‖` for every time step `t` (in time order): the size of the gradient that
    /// reaches each step's output through the unrolled graph, summed over the batch.
    ///
    /// Vanishing gradients show as norms that shrink towards early steps (a SimpleRNN on a long
    /// sequence); an LSTM's cell state keeps them larger. `loss` maps the layer's output (the sequence,
    /// or the last step) to a scalar.
    public func gradientNormsThroughTime(input: Tensor, loss: (Node) -> Node) -> [Float] {
        let tape = Tape()
        let x = tape.constant(input)
        let outputs = run(x).outputs
        for output in outputs { tape.retainGradient(of: output) }
        let output = returnSequences ? RNN.stack(outputs) : outputs.last!
        tape.backward(from: loss(output))
        let norms = outputs.map { node -> Float in
            tape.gradient(of: node).scalars.reduce(0) { $0 + $1 * $1 }.squareRoot()
        }
        return goBackwards ? norms.reversed() : norms
    }
}
