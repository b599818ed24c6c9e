import Graph
import Kernels
import Synchronization

/// Weight initializers with Keras' definitions, drawn from ``SeededGenerator``.
public enum Initializers {
    private static let seedCounter = Atomic<UInt64>(0x5EED)

    /// Returns a fresh seed from a process-wide sequence, so layers created in the same order get
    /// the same weights in every run (and two layers never share a seed).
    public static func nextSeed() -> UInt64 {
        seedCounter.wrappingAdd(0x9E37_79B9, ordering: .relaxed).newValue
    }

    /// Restarts the process-wide seed sequence (call before building a model to make it reproducible).
    public static func resetSeedSequence(to seed: UInt64 = 0x5EED) {
        seedCounter.store(seed, ordering: .relaxed)
    }

    /// Glorot (Xavier) uniform: U(-l, l) with l = sqrt(6 / (fanIn + fanOut)), for a `[fanIn, fanOut]` matrix.
    public static func glorotUniform(_ shape: [Int], seed: UInt64) -> Tensor {
        let fanIn = shape.count >= 2 ? shape[shape.count - 2] : shape[0]
        let fanOut = shape.last!
        let limit = (6 / Float(fanIn + fanOut)).squareRoot()
        return Tensor.randomUniform(shape, in: -limit...limit, seed: seed)
    }

    /// An orthogonal matrix of shape `[rows, columns]` (orthonormal rows or columns, whichever are fewer),
    /// from the QR decomposition of a standard normal matrix with the sign correction of Saxe et al.
    public static func orthogonal(_ shape: [Int], seed: UInt64, gain: Float = 1) -> Tensor {
        check(shape.count == 2, "orthogonal: needs a rank-2 shape, got \(shape)")
        let rows = shape[0], columns = shape[1]
        // Orthonormalise `short` random normal vectors of length `long` (the columns of a tall matrix),
        // then transpose if the requested matrix is wide.
        let long = max(rows, columns), short = min(rows, columns)
        var generator = SeededGenerator(seed: seed)
        var vectors = (0..<(long * short)).map { _ in Double(generator.nextNormal()) }
        let status = unroll_orthonormalize(&vectors, short, long)
        check(status == 0, "orthogonal: random matrix was singular")
        let columnsFirst = Tensor(shape: [short, long], scalars: vectors.map { Float($0) * gain })
        return rows >= columns ? columnsFirst.transposed() : columnsFirst
    }
}
