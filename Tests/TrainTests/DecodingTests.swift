import Graph
import Train
import XCTest

/// Greedy and temperature choices, and step-by-step decoding with carried state.
final class DecodingTests: XCTestCase {
    func testGreedyTakesTheFirstLargestLogitOfEveryRow() {
        var generator = SeededGenerator(seed: 1)
        let logits = Tensor(shape: [3, 4], scalars: [0, 5, 1, 4.5, 2, 2, 1, 0, -3, -1, -2, -1])
        XCTAssertEqual(Decoding.choose(fromLogits: logits, strategy: .greedy, generator: &generator), [1, 0, 1])
    }

    func testTemperatureNearZeroIsGreedyAndOneFollowsTheSoftmax() {
        var generator = SeededGenerator(seed: 2)
        let scalars = (0..<200).map { Float(($0 * 37) % 101) / 7 - 5 }
        let logits = Tensor(shape: [20, 10], scalars: scalars)
        let greedy = Decoding.choose(fromLogits: logits, strategy: .greedy, generator: &generator)
        XCTAssertEqual(Decoding.choose(fromLogits: logits, strategy: .temperature(1e-4), generator: &generator), greedy)
        // Large logits over a tiny temperature: shifted before dividing, so nothing overflows to NaN.
        let large = Tensor(shape: [1, 3], scalars: [300, -200, 299.9])
        for temperature: Float in [1e-38, .leastNonzeroMagnitude, 0] {
            XCTAssertEqual(Decoding.choose(fromLogits: large, strategy: .temperature(temperature), generator: &generator), [0])
        }
        // softmax([0, log 3]) = [1/4, 3/4]: index 0 about a quarter of the time.
        let pair = Tensor(shape: [4_000, 2], scalars: (0..<4_000).flatMap { _ in [0, Float(Foundation.log(3.0))] })
        let zeros = Decoding.choose(fromLogits: pair, strategy: .temperature(1), generator: &generator).filter { $0 == 0 }.count
        XCTAssertEqual(Double(zeros) / 4_000, 0.25, accuracy: 0.03)
        // At temperature 2 the odds flatten to 1 : √3, so index 0 rises to about 0.366.
        let warm = Decoding.choose(fromLogits: pair, strategy: .temperature(2), generator: &generator).filter { $0 == 0 }.count
        XCTAssertEqual(Double(warm) / 4_000, 1 / (1 + 3.0.squareRoot()), accuracy: 0.03)
    }

    func testDecodeFeedsBackEachChoiceAndCarriesTheState() {
        var generator = SeededGenerator(seed: 3)
        var calls: [([Int], Int)] = []
        // The step favours (previous + state) mod 5 and counts its calls in the state.
        let tokens = Decoding.decode(start: [0, 2], state: 1, steps: 4, strategy: .greedy, generator: &generator) { previous, state in
            calls.append((previous, state))
            let scalars = previous.flatMap { p in (0..<5).map { Float($0 == (p + state) % 5 ? 1 : 0) } }
            return (Tensor(shape: [previous.count, 5], scalars: scalars), state + 1)
        }
        XCTAssertEqual(tokens, [[1, 3, 1, 0], [3, 0, 3, 2]])
        XCTAssertEqual(calls.map(\.0), [[0, 2], [1, 3], [3, 0], [1, 3]])
        XCTAssertEqual(calls.map(\.1), [1, 2, 3, 4])
    }
}
