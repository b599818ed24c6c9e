import Foundation
import Graph

/// How a decoder picks the next token from a step's logits.
public enum DecodingStrategy: Sendable, Equatable {
    /// The most likely token (argmax; the first on ties).
    case greedy
    /// A token drawn from `softmax(logits / temperature)`; lower is more conservative, and as the
    /// temperature goes to 0 the draw becomes the greedy choice.
    case temperature(Float)
}

/// Autoregressive decoding, one step at a time with carried state: the library half of a seq2seq model's
/// inference and of text generation.
///
/// ```swift
/// let tokens = Decoding.decode(start: [startToken], state: encoderState, steps: 4, strategy: .greedy,
///                              generator: &generator) { previous, state in
///     let (output, next) = decoder(Node(oneHot(previous)), initialState: state)
///     return (head(output).value, next)
/// }
/// ```
public enum Decoding {
    /// Returns the chosen token of every row of `logits` (`[batch, vocabulary]`, or `[batch, 1, vocabulary]`).
    public static func choose(fromLogits logits: Tensor, strategy: DecodingStrategy,
                              generator: inout SeededGenerator) -> [Int] {
        let vocabulary = logits.shape.last!
        let values = logits.scalars
        return (0..<(values.count / vocabulary)).map { row in
            let slice = values[(row * vocabulary)..<((row + 1) * vocabulary)]
            switch strategy {
            case .greedy:
                var best = slice.startIndex
                for index in slice.indices where slice[index] > slice[best] { best = index }
                return best - row * vocabulary
            case .temperature(let temperature):
                return sample(Array(slice), temperature: temperature, generator: &generator)
            }
        }
    }

    /// Draws an index from `softmax(logits / temperature)`; the largest logit's weight is exactly 1 after
    /// shifting, so a temperature near 0 leaves only the largest (the greedy choice).
    static func sample(_ logits: [Float], temperature: Float, generator: inout SeededGenerator) -> Int {
        let largest = logits.max()!
        let weights = logits.map { Foundation.exp(Double(($0 - largest) / max(temperature, .leastNormalMagnitude))) }
        var threshold = Double(generator.nextUnitFloat()) * weights.reduce(0, +)
        for (index, weight) in weights.enumerated() {
            threshold -= weight
            if threshold < 0 { return index }
        }
        return weights.firstIndex(of: 1) ?? weights.count - 1
    }

    /// Runs `steps` decoding steps from `start` (one token per sequence of the batch), feeding each chosen
    /// token back with the state the step returned; returns the chosen tokens, `[batch][steps]`.
    ///
    /// `step(previous, state)` returns the logits `[batch, vocabulary]` for the next token and the new state.
    public static func decode<State>(start: [Int], state: State, steps: Int, strategy: DecodingStrategy,
                                     generator: inout SeededGenerator,
                                     step: ([Int], State) throws -> (logits: Tensor, state: State)) rethrows -> [[Int]] {
        var previous = start, state = state
        var result = [[Int]](repeating: [], count: start.count)
        for _ in 0..<steps {
            let (logits, next) = try step(previous, state)
            previous = choose(fromLogits: logits, strategy: strategy, generator: &generator)
            for (row, token) in previous.enumerated() { result[row].append(token) }
            state = next
        }
        return result
    }
}
