import Foundation

/// A seeded pseudo-random generator (SplitMix64) that gives the same numbers on every platform.
///
/// SplitMix64 (Steele, Lea and Flood, 2014): the state advances by 0x9E3779B97F4A7C15 and each output
/// is the state passed through two xor-shift-multiply rounds. Floats take the top 24 bits, so a seed
/// fixes every initial weight, dropout mask and shuffle of a run, bit for bit.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Creates a generator from a seed.
    public init(seed: UInt64) { state = seed }

    /// Returns the next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Returns a float uniformly distributed in `[0, 1)`.
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * 0x1p-24
    }

    /// Returns a float uniformly distributed in `range`.
    public mutating func nextFloat(in range: ClosedRange<Float>) -> Float {
        range.lowerBound + (range.upperBound - range.lowerBound) * nextUnitFloat()
    }

    /// Returns a standard normal float (Box-Muller transform).
    public mutating func nextNormal() -> Float {
        let u1 = (Double(next() >> 11) + 1) * 0x1p-53   // (0, 1]
        let u2 = Double(next() >> 11) * 0x1p-53
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// Returns an integer uniformly distributed in `0..<upperBound`.
    public mutating func nextIndex(below upperBound: Int) -> Int {
        Int(next() % UInt64(upperBound))
    }
}

extension Tensor {
    /// Creates a tensor of uniformly distributed values in `range` from a seeded generator.
    public static func randomUniform(_ shape: [Int], in range: ClosedRange<Float> = 0...1,
                                     generator: inout SeededGenerator) -> Tensor {
        var tensor = Tensor(uninitializedShape: shape)
        tensor.withUnsafeMutableBufferPointer { buffer in
            for i in buffer.indices { buffer[i] = generator.nextFloat(in: range) }
        }
        return tensor
    }

    /// Creates a tensor of uniformly distributed values in `range` from a seed.
    public static func randomUniform(_ shape: [Int], in range: ClosedRange<Float> = 0...1, seed: UInt64) -> Tensor {
        var generator = SeededGenerator(seed: seed)
        return randomUniform(shape, in: range, generator: &generator)
    }

    /// Creates a tensor of normally distributed values from a seeded generator.
    public static func randomNormal(_ shape: [Int], mean: Float = 0, standardDeviation: Float = 1,
                                    generator: inout SeededGenerator) -> Tensor {
        var tensor = Tensor(uninitializedShape: shape)
        tensor.withUnsafeMutableBufferPointer { buffer in
            for i in buffer.indices { buffer[i] = mean + standardDeviation * generator.nextNormal() }
        }
        return tensor
    }

    /// Creates a tensor of normally distributed values from a seed.
    public static func randomNormal(_ shape: [Int], mean: Float = 0, standardDeviation: Float = 1,
                                    seed: UInt64) -> Tensor {
        var generator = SeededGenerator(seed: seed)
        return randomNormal(shape, mean: mean, standardDeviation: standardDeviation, generator: &generator)
    }
}
