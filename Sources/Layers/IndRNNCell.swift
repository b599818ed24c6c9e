import Foundation
import Graph

/// The independently recurrent cell (Li et al., 2018): each unit sees only its own previous value.
///
/// ```
/// h' = relu(x W + u ⊙ h + b)
/// ```
/// Parameters: `kernel [inputSize, hiddenSize]` (glorot uniform), `recurrent_kernel u [hiddenSize]`
/// (uniform in [0, 1]), `bias [hiddenSize]` (zeros). As in the paper, `|u|` is bounded after every
/// update by ``recurrentBound`` (for relu, `2^(1/T)` keeps a gradient over `T` steps from exploding).
public final class IndRNNCell: RecurrentCell {
    /// The state size.
    public let hiddenSize: Int
    /// The largest magnitude a recurrent weight may take (`nil`: unbounded).
    public let recurrentBound: Float?
    private let seed: UInt64
    private var kernel: Parameter?
    private var recurrentWeight: Parameter?
    private var bias: Parameter?

    /// Creates a cell; `timeSteps`, when given, sets the bound to `2^(1/timeSteps)` unless `recurrentBound` is given.
    public init(hiddenSize: Int, recurrentBound: Float? = nil, timeSteps: Int? = nil, seed: UInt64? = nil) {
        self.hiddenSize = hiddenSize
        if let recurrentBound {
            self.recurrentBound = recurrentBound
        } else if let timeSteps {
            self.recurrentBound = Float(Foundation.pow(2, 1 / Double(timeSteps)))
        } else {
            self.recurrentBound = nil
        }
        self.seed = seed ?? Initializers.nextSeed()
    }

    /// "IndRNN".
    public var typeName: String { "IndRNN" }
    /// `hiddenSize` must be positive, the recurrent bound (given or from `timeSteps`) positive and finite.
    public var invalidSettings: [SettingError] {
        SettingError.unless(hiddenSize > 0, typeName, "hiddenSize", hiddenSize, "must be positive")
            + SettingError.unless(recurrentBound.map { $0 > 0 && $0.isFinite } ?? true, typeName, "recurrentBound",
                                  recurrentBound.map { "\($0)" } ?? "nil", "must be positive and finite (timeSteps ≥ 1)")
    }
    /// kernel, recurrent_kernel, bias.
    public var parameters: [Parameter] { [kernel, recurrentWeight, bias].compactMap { $0 } }
    /// The built input size.
    public var inputSize: Int? { kernel?.shape[0] }

    /// Creates the parameters.
    public func build(inputSize: Int) {
        guard kernel == nil else { return }
        checkSettings(invalidSettings)
        kernel = Parameter("kernel", Initializers.glorotUniform([inputSize, hiddenSize], seed: seed))
        recurrentWeight = Parameter("recurrent_kernel", Tensor.randomUniform([hiddenSize], in: 0...1, seed: seed &+ 1))
        bias = Parameter("bias", Tensor.zeros([hiddenSize]))
        applyConstraints()
    }

    /// `x · kernel + bias` for all steps at once.
    public func projectInput(_ input: Node) -> Node {
        input.matmul(input.onSameTape(kernel!)) + input.onSameTape(bias!)
    }

    /// Zeros `[batch, hiddenSize]`.
    public func zeroState(batchSize: Int) -> Node { Node(Tensor.zeros([batchSize, hiddenSize])) }

    /// One step.
    public func callAsFunction(_ projectedInput: Node, state h: Node) -> (output: Node, state: Node) {
        let next = relu(projectedInput + h.onSameTape(recurrentWeight!) * h)
        return (next, next)
    }

    /// Clips every recurrent weight to `[-recurrentBound, recurrentBound]`.
    public func applyConstraints() {
        guard let recurrentBound, let recurrentWeight else { return }
        recurrentWeight.value = recurrentWeight.value.clamped(to: -recurrentBound...recurrentBound)
    }
}
