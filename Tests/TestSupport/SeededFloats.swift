/// Floats in [-1, 1) from a 64-bit linear congruential generator: the same values on every platform and run, for
/// tests that compare the bits of two kernel paths over many shapes.
public struct SeededFloats {
    /// The generator's state; any value is a valid seed.
    public var state: UInt64

    /// A generator starting from `state`.
    public init(state: UInt64) { self.state = state }

    /// The next value, a multiple of 2⁻²³ in [-1, 1).
    public mutating func next() -> Float {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(Int64(state >> 40) - (1 << 23)) / Float(1 << 23)
    }

    /// The next `count` values.
    public mutating func array(_ count: Int) -> [Float] { (0..<count).map { _ in next() } }
}
