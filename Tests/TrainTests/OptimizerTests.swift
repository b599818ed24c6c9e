@testable import Graph
import Layers
import TestSupport
import Train
import XCTest

final class OptimizerTests: XCTestCase {
    // MARK: PyTorch fixtures

    /// Trains the fixture's Dense layer (PyTorch layout) for its three steps, checking each loss and the
    /// final parameters; `settings` are fragments of the fixture's optimizer description that the
    /// optimizer passed in must have been built with.
    private func checkFixture(_ name: String, settings: [String], _ optimizer: any Optimizer,
                              file: StaticString = #filePath, line: UInt = #line) throws {
        let fixture = try Fixture(name)
        let description = try XCTUnwrap(fixture.json["optimizer"] as? String, file: file, line: line)
        for setting in settings {
            XCTAssertTrue(description.contains(setting), "\(name): settings \(description) lack \(setting)",
                          file: file, line: line)
        }
        let input = try fixture.tensor("input"), target = try fixture.tensor("target")
        let weight = Parameter("weight", try fixture.tensor("start", "weight"))
        let bias = Parameter("bias", try fixture.tensor("start", "bias"))
        let expectedLosses = try XCTUnwrap(fixture.json["losses"] as? [Double], file: file, line: line)
        XCTAssertEqual(expectedLosses.count, 3, file: file, line: line)
        for (step, expected) in expectedLosses.enumerated() {
            let tape = Tape()
            let x = tape.constant(input)
            let w = tape.parameter(weight)
            let b = tape.parameter(bias)
            let prediction = x.matmul(w, transposingOther: true) + b
            let loss = square(prediction - tape.constant(target)).mean()
            XCTAssertEqual(Double(loss.value.scalar), expected, accuracy: 1e-5 * abs(expected),
                           "\(name): loss before step \(step + 1)", file: file, line: line)
            tape.backward(from: loss)
            optimizer.update([weight, bias])
            weight.zeroGradient()
            bias.zeroGradient()
        }
        XCTAssertEqual(optimizer.iterations, 3, file: file, line: line)
        assertClose(weight.value, try fixture.tensor("after", "weight"), tolerance: 1e-5, "\(name) weight",
                    file: file, line: line)
        assertClose(bias.value, try fixture.tensor("after", "bias"), tolerance: 1e-5, "\(name) bias",
                    file: file, line: line)
    }

    func testAdamMatchesPyTorchFixture() throws {
        try checkFixture("optimizer_adam", settings: ["'lr': 0.01", "'betas': (0.9, 0.999)", "'eps': 1e-08",
                                                      "'weight_decay': 0,", "'amsgrad': False"],
                         Adam(learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8))
    }

    func testSGDMomentumMatchesPyTorchFixture() throws {
        try checkFixture("optimizer_sgd_momentum", settings: ["'lr': 0.05", "'momentum': 0.9", "'dampening': 0,",
                                                              "'nesterov': False", "'weight_decay': 0,"],
                         SGD(learningRate: 0.05, momentum: 0.9))
    }

    func testRMSPropMatchesPyTorchFixture() throws {
        try checkFixture("optimizer_rmsprop", settings: ["'lr': 0.01", "'momentum': 0,", "'alpha': 0.99",
                                                         "'eps': 1e-08", "'centered': False", "'weight_decay': 0,"],
                         RMSProp(learningRate: 0.01, rho: 0.99, epsilon: 1e-8))
    }

    // MARK: Hand-computed steps

    /// Applies one update per gradient list, setting each parameter's gradient first.
    private func train(_ optimizer: any Optimizer, _ parameter: Parameter, gradients: [[Float]]) {
        for gradient in gradients {
            parameter.gradient = Tensor(gradient)
            optimizer.update([parameter])
        }
    }

    func testAdagradTwoSteps() {
        // s = 0.1 + g², p −= 0.1 g / (√s + 1e-7): s = [0.35, 1.1], then [0.4125, 5.1].
        let parameter = Parameter("p", Tensor([1, -2]))
        let optimizer = Adagrad(learningRate: 0.1)
        train(optimizer, parameter, gradients: [[0.5, 1]])
        assertClose(parameter.value, shape: [2], [0.91548459, -2.09534625], tolerance: 1e-6, "step 1")
        train(optimizer, parameter, gradients: [[-0.25, 2]])
        assertClose(parameter.value, shape: [2], [0.95440953, -2.18390773], tolerance: 1e-6, "step 2")
    }

    func testSGDNesterovTwoSteps() {
        // v = 0.9 v − 0.1 g; p += 0.9 v − 0.1 g. Step 1: v = [−0.05, −0.1], p += [−0.095, −0.19].
        // Step 2: v = [−0.02, −0.29], p += [0.007, −0.461].
        let parameter = Parameter("p", Tensor([1, -2]))
        let optimizer = SGD(learningRate: 0.1, momentum: 0.9, nesterov: true)
        train(optimizer, parameter, gradients: [[0.5, 1]])
        assertClose(parameter.value, shape: [2], [0.905, -2.19], tolerance: 1e-6, "step 1")
        train(optimizer, parameter, gradients: [[-0.25, 2]])
        assertClose(parameter.value, shape: [2], [0.912, -2.651], tolerance: 1e-6, "step 2")
    }

    func testRMSPropCenteredWithMomentumTwoSteps() {
        // Step 1: s = 0.1 g², a = 0.1 g, √(s − a²) = 0.3 |g|, so m = 0.1 g / (0.3 |g|) = ±1/3.
        let parameter = Parameter("p", Tensor([1, -2]))
        let optimizer = RMSProp(learningRate: 0.1, momentum: 0.5, centered: true)
        train(optimizer, parameter, gradients: [[0.5, 1]])
        assertClose(parameter.value, shape: [2], [0.66666689, -2.33333322], tolerance: 1e-6, "step 1")
        train(optimizer, parameter, gradients: [[-0.25, 2]])
        assertClose(parameter.value, shape: [2], [0.64847871, -2.81392086], tolerance: 1e-6, "step 2")
    }

    func testAdamAMSGradKeepsLargestSecondMoment() {
        // The second gradient is small, so v shrinks; AMSGrad divides by the first step's larger v.
        let plain = Parameter("plain", Tensor([0, 0])), amsgrad = Parameter("amsgrad", Tensor([0, 0]))
        train(Adam(learningRate: 0.1), plain, gradients: [[1, -2], [0.01, 0.02]])
        train(Adam(learningRate: 0.1, amsgrad: true), amsgrad, gradients: [[1, -2], [0.01, 0.02]])
        assertClose(plain.value, shape: [2], [-0.16774692, 0.16625799], tolerance: 1e-5, "Adam")
        assertClose(amsgrad.value, shape: [2], [-0.16771643, 0.16622817], tolerance: 1e-5, "AMSGrad")
    }

    func testWeightDecayIsDecoupled() {
        // p ← p − η λ p − η g = 2 − 0.1·0.5·2 − 0.1·1 = 1.8, whatever the gradient's scale.
        let parameter = Parameter("p", Tensor([2]))
        train(SGD(learningRate: 0.1, weightDecay: 0.5), parameter, gradients: [[1]])
        assertClose(parameter.value, shape: [1], [1.8], tolerance: 1e-6)
        // Adam's first step is η·sign(g); the decay comes on top: 2 − 0.1 − 0.1 = 1.8.
        let adamParameter = Parameter("p", Tensor([2]))
        train(Adam(learningRate: 0.1, weightDecay: 0.5), adamParameter, gradients: [[3]])
        assertClose(adamParameter.value, shape: [1], [1.8], tolerance: 1e-6)
    }

    func testAdamOverFullAndPartialVectorBlocks() {
        // 11 elements: the kernels take one whole 8-lane vector, then a masked partial one; each element must
        // follow the scalar equations, checked here in Double for two steps.
        let count = 11
        let start: [Float] = (0..<count).map { Float($0) * 0.1 - 0.5 }
        let firstGradient: [Float] = (0..<count).map { Float($0 % 5) - 2.2 }
        let secondGradient: [Float] = (0..<count).map { Float($0) * 0.03 - 0.1 }
        let gradients = [firstGradient, secondGradient]
        let parameter = Parameter("p", Tensor(start))
        train(Adam(learningRate: 0.01), parameter, gradients: gradients)
        var expected = start.map(Double.init)
        var m = [Double](repeating: 0, count: count), v = [Double](repeating: 0, count: count)
        for (step, gradient) in gradients.enumerated() {
            let t = Double(step + 1)
            for i in 0..<count {
                let g = Double(gradient[i])
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                let correctedFirst: Double = m[i] / (1 - pow(0.9, t))
                let correctedSecond: Double = v[i] / (1 - pow(0.999, t))
                expected[i] -= 0.01 * correctedFirst / (correctedSecond.squareRoot() + 1e-7)
            }
        }
        assertClose(parameter.value, shape: [count], expected.map(Float.init), tolerance: 1e-6)
    }

    func testLargeParametersUpdateToTheSameBitsOnOneAndTwoThreads() {
        // 40,000 + 70,007 elements: enough for an update to use both threads, which then share each matrix in
        // 16,384-element runs (the last one partial, ending off the 8-lane grid); a run whose state arrays or
        // gradient were offset wrongly would give other bits than the uncut single-thread update.
        let shapes = [[200, 200], [7, 10_001], [3]]
        func train(_ makeOptimizer: () -> any Optimizer, threads: Int) -> (values: [[Float]], forks: Int) {
            let parameters = shapes.enumerated().map { index, shape in
                let count = shape.reduce(1, *)
                return Parameter("p\(index)", Tensor(shape: shape, scalars: (0..<count).map { Float(sin(Double($0 + index))) }))
            }
            let optimizer = makeOptimizer()
            let forks = Forks.count.load(ordering: .relaxed)
            GEMMThreads.withCount(threads) {
                for step in 0..<3 {
                    for (index, parameter) in parameters.enumerated() {
                        let count = parameter.value.count
                        parameter.gradient = Tensor(shape: parameter.value.shape, scalars: (0..<count).map {
                            Float(cos(Double($0 * (step + 2) + index)))
                        })
                    }
                    optimizer.update(parameters)
                }
            }
            return (parameters.map { $0.value.scalars }, Forks.count.load(ordering: .relaxed) - forks)
        }
        let optimizers: [(String, () -> any Optimizer)] = [
            ("Adam", { Adam(learningRate: 0.01, amsgrad: true, weightDecay: 0.1, clipping: .byGlobalNorm(50)) }),
            ("SGD", { SGD(learningRate: 0.01, momentum: 0.9, nesterov: true) }),
            ("RMSProp", { RMSProp(learningRate: 0.01, momentum: 0.5, centered: true) }),
        ]
        for (name, makeOptimizer) in optimizers {
            let single = train(makeOptimizer, threads: 1), double = train(makeOptimizer, threads: 2)
            XCTAssertEqual(single.forks, 0, "\(name): one thread must not fork")
            XCTAssertEqual(double.forks, 3, "\(name): two threads fork once per update")
            XCTAssertNotEqual(single.values[1].last, Float(sin(70_007.0)), "\(name): the last run must be updated")
            for (index, (one, two)) in zip(single.values, double.values).enumerated() {
                XCTAssertEqual(one.map(\.bitPattern), two.map(\.bitPattern), "\(name): parameter \(index)")
            }
        }
    }

    // MARK: Settings

    func testCompileRejectsOptimizerSettingsOutOfRange() throws {
        let cases: [(optimizer: any Optimizer, setting: String)] = [
            (Adam(beta1: 1), "Adam.beta1"), (Adam(beta2: -0.5), "Adam.beta2"), (Adam(epsilon: -1), "Adam.epsilon"),
            (Adam(learningRate: -0.1), "Adam.learningRate"), (Adam(learningRate: .nan), "Adam.learningRate"),
            (Adam(weightDecay: -1), "Adam.weightDecay"), (Adam(clipping: .byNorm(0)), "Adam.clipping"),
            (SGD(momentum: 1.5), "SGD.momentum"), (SGD(clipping: .byValue(-1)), "SGD.clipping"),
            (RMSProp(rho: 1), "RMSProp.rho"), (RMSProp(momentum: -0.1), "RMSProp.momentum"),
            (Adagrad(initialAccumulatorValue: -1), "Adagrad.initialAccumulatorValue"),
        ]
        for (optimizer, setting) in cases {
            let model = Sequential([Dense(outputSize: 1)], inputShape: [2])
            XCTAssertThrowsError(try model.compile(loss: .meanSquaredError, optimizer: optimizer), setting) { error in
                guard case TrainingError.invalidArgument(let name, _, _) = error else {
                    return XCTFail("\(setting): expected invalidArgument, got \(error)")
                }
                XCTAssertEqual(name, setting)
            }
            XCTAssertNil(model.optimizer, "\(setting): a rejected optimizer must not be set")
        }
        for optimizer in [Adam(amsgrad: true), SGD(momentum: 1, nesterov: true), RMSProp(momentum: 0.9, centered: true),
                          Adagrad(initialAccumulatorValue: 0)] as [any Optimizer] {
            XCTAssertNoThrow(try Sequential([Dense(outputSize: 1)], inputShape: [2])
                .compile(loss: .meanSquaredError, optimizer: optimizer))
        }
    }

    func testSGDMomentumRaisedFromZeroStartsAVelocity() {
        // Step 1 without momentum: p = 1 − 0.1·1 = 0.9. Step 2 with μ = 0.5 from a zero velocity: v = −0.1, p = 0.8.
        // Step 3: v = 0.5·(−0.1) − 0.1 = −0.15, p = 0.65.
        let parameter = Parameter("p", Tensor([1]))
        let optimizer = SGD(learningRate: 0.1)
        train(optimizer, parameter, gradients: [[1]])
        optimizer.momentum = 0.5
        train(optimizer, parameter, gradients: [[1], [1]])
        assertClose(parameter.value, shape: [1], [0.65], tolerance: 1e-6)
    }

    // MARK: Schedules

    func testExponentialDecay() {
        let smooth = ExponentialDecay(initialLearningRate: 0.1, decaySteps: 10, decayRate: 0.5)
        XCTAssertEqual(smooth.learningRate(atStep: 0), 0.1, accuracy: 1e-8)
        XCTAssertEqual(smooth.learningRate(atStep: 5), 0.0707106781, accuracy: 1e-8)
        XCTAssertEqual(smooth.learningRate(atStep: 7), 0.0615572207, accuracy: 1e-8)
        XCTAssertEqual(smooth.learningRate(atStep: 25), 0.0176776695, accuracy: 1e-8)
    }

    func testExponentialDecayStaircase() {
        let stairs = ExponentialDecay(initialLearningRate: 0.1, decaySteps: 10, decayRate: 0.5, staircase: true)
        XCTAssertEqual(stairs.learningRate(atStep: 9), 0.1, accuracy: 1e-8)
        XCTAssertEqual(stairs.learningRate(atStep: 10), 0.05, accuracy: 1e-8)
        XCTAssertEqual(stairs.learningRate(atStep: 25), 0.025, accuracy: 1e-8)
    }

    func testStepDecay() {
        let schedule = StepDecay(initialLearningRate: 0.2, decaySteps: 3, factor: 0.1)
        let rates = (0..<8).map { schedule.learningRate(atStep: $0) }
        let expected: [Float] = [0.2, 0.2, 0.2, 0.02, 0.02, 0.02, 0.002, 0.002]
        for (rate, want) in zip(rates, expected) { XCTAssertEqual(rate, want, accuracy: want * 1e-6) }
    }

    func testPiecewiseConstantDecay() throws {
        let schedule = try PiecewiseConstantDecay(boundaries: [2, 5], values: [1, 0.5, 0.1])
        XCTAssertEqual((0..<8).map { schedule.learningRate(atStep: $0) }, [1, 1, 1, 0.5, 0.5, 0.5, 0.1, 0.1])
    }

    func testPiecewiseConstantDecayRejectsInconsistentLists() {
        XCTAssertThrowsError(try PiecewiseConstantDecay(boundaries: [2, 5], values: [1, 0.5])) { error in
            XCTAssertEqual(error as? ScheduleError, .valueCountMismatch(boundaryCount: 2, valueCount: 2))
        }
        XCTAssertThrowsError(try PiecewiseConstantDecay(boundaries: [5, 5], values: [1, 0.5, 0.1])) { error in
            XCTAssertEqual(error as? ScheduleError, .boundariesNotIncreasing(index: 1, previous: 5, value: 5))
        }
    }

    func testScheduleOverridesLearningRateAtEachIteration() {
        // Rates 1, 0.5, 0.25 at iterations 0, 1, 2 with a unit gradient: p = −1.75; the base rate is ignored.
        let parameter = Parameter("p", Tensor([0]))
        let optimizer = SGD(learningRate: 100, schedule: StepDecay(initialLearningRate: 1, decaySteps: 1, factor: 0.5))
        XCTAssertEqual(optimizer.currentLearningRate, 1)
        train(optimizer, parameter, gradients: [[1], [1], [1]])
        assertClose(parameter.value, shape: [1], [-1.75], tolerance: 1e-6)
        XCTAssertEqual(optimizer.iterations, 3)
        XCTAssertEqual(optimizer.currentLearningRate, 0.125)
    }

    // MARK: Clipping

    func testClippingByGlobalNormScalesAllGradientsTogether() {
        // Gradients [3] and [4] have global norm 5; with limit 1 they become [0.6] and [0.8].
        let a = Parameter("a", Tensor([0])), b = Parameter("b", Tensor([0]))
        a.gradient = Tensor([3])
        b.gradient = Tensor([4])
        XCTAssertEqual(globalGradientNorm(of: [a, b]), 5, accuracy: 1e-6)
        SGD(learningRate: 1, clipping: .byGlobalNorm(1)).update([a, b])
        assertClose(a.value, shape: [1], [-0.6], tolerance: 1e-6, "a")
        assertClose(b.value, shape: [1], [-0.8], tolerance: 1e-6, "b")
        XCTAssertEqual(a.gradient, Tensor([3]), "the optimizer clips as it reads and leaves the gradient")
    }

    func testClipGradientsInPlace() throws {
        let parameter = Parameter("p", Tensor([0, 0]))
        parameter.gradient = Tensor([3, 4])
        GradientClipping.byGlobalNorm(1).clipGradients(of: [parameter])
        assertClose(try XCTUnwrap(parameter.gradient), shape: [2], [0.6, 0.8], tolerance: 1e-6)
        GradientClipping.byValue(0.7).clipGradients(of: [parameter])
        assertClose(try XCTUnwrap(parameter.gradient), shape: [2], [0.6, 0.7], tolerance: 1e-6)
    }

    func testClippingByNormIsPerParameter() {
        let large = Parameter("large", Tensor([0, 0])), small = Parameter("small", Tensor([0, 0]))
        large.gradient = Tensor([3, 4])
        small.gradient = Tensor([0.3, 0.4])
        SGD(learningRate: 1, clipping: .byNorm(1)).update([large, small])
        assertClose(large.value, shape: [2], [-0.6, -0.8], tolerance: 1e-6, "norm 5 scaled to 1")
        assertClose(small.value, shape: [2], [-0.3, -0.4], tolerance: 1e-6, "norm 0.5 left as is")
    }

    func testClippingByValueClampsEachElement() {
        let parameter = Parameter("p", Tensor([0, 0, 0]))
        parameter.gradient = Tensor([-3, 0.2, 5])
        SGD(learningRate: 1, clipping: .byValue(1)).update([parameter])
        assertClose(parameter.value, shape: [3], [1, -0.2, -1], tolerance: 1e-6)
        // A NaN gradient must show up in the parameter, not be clamped into a plausible number.
        parameter.gradient = Tensor([.nan, 0, 0])
        SGD(learningRate: 1, clipping: .byValue(1)).update([parameter])
        XCTAssertTrue(parameter.value[0].isNaN)
    }

    func testClippingAppliesBeforeAdamMoments() {
        // With clipping by value 0.5, Adam sees g = 0.5: m = 0.05, v = 0.00025, and its first step is still η.
        // The second step tells clipping apart from no clipping: g = [0.5, 0.5] versus [4, 0.5].
        let clipped = Parameter("clipped", Tensor([0, 0])), reference = Parameter("reference", Tensor([0, 0]))
        train(Adam(learningRate: 0.1, clipping: .byValue(0.5)), clipped, gradients: [[1, 0.5], [4, 0.5]])
        train(Adam(learningRate: 0.1), reference, gradients: [[0.5, 0.5], [0.5, 0.5]])
        assertClose(clipped.value, reference.value, tolerance: 1e-6)
    }

    // MARK: Which parameters move

    private func allOptimizers() -> [any Optimizer] {
        [SGD(learningRate: 0.1), SGD(learningRate: 0.1, momentum: 0.9), RMSProp(learningRate: 0.1),
         Adam(learningRate: 0.1), Adagrad(learningRate: 0.1)]
    }

    func testNonTrainableParametersAreNotUpdated() {
        for optimizer in allOptimizers() {
            let frozen = Parameter("frozen", Tensor([1, 2]), isTrainable: false)
            let trained = Parameter("trained", Tensor([1, 2]))
            frozen.gradient = Tensor([1, 1])
            trained.gradient = Tensor([1, 1])
            optimizer.update([frozen, trained])
            XCTAssertEqual(frozen.value, Tensor([1, 2]), "\(type(of: optimizer))")
            XCTAssertLessThan(trained.value[0], 0.95, "\(type(of: optimizer)) moved the trainable parameter")
        }
    }

    func testParametersWithoutGradientAreLeftUnchanged() {
        for optimizer in allOptimizers() {
            let idle = Parameter("idle", Tensor([1, 2]))
            let trained = Parameter("trained", Tensor([1, 2]))
            // A first step builds momentum and moments for both, so a later nil gradient must not replay them.
            idle.gradient = Tensor([1, 1])
            trained.gradient = Tensor([1, 1])
            optimizer.update([idle, trained])
            let afterFirst = idle.value
            idle.zeroGradient()
            optimizer.update([idle, trained])
            XCTAssertEqual(idle.value, afterFirst, "\(type(of: optimizer))")
            XCTAssertEqual(optimizer.iterations, 2)
        }
    }

    func testAdamCountsStepsPerParameter() {
        // A parameter that skips an update (nil gradient) continues with t = 2, exactly as if the skipped
        // update had not happened.
        let skipping = Parameter("skipping", Tensor([0, 0])), always = Parameter("always", Tensor([0, 0]))
        let other = Parameter("other", Tensor([0]))
        let optimizer = Adam(learningRate: 0.1)
        for gradient in [[1, -2], nil, [0.01, 0.02]] as [[Float]?] {
            skipping.gradient = gradient.map { Tensor($0) }
            other.gradient = Tensor([1])
            optimizer.update([skipping, other])
        }
        train(Adam(learningRate: 0.1), always, gradients: [[1, -2], [0.01, 0.02]])
        assertClose(skipping.value, always.value, tolerance: 1e-6)
        assertClose(always.value, shape: [2], [-0.16774692, 0.16625799], tolerance: 1e-5)
        XCTAssertEqual(optimizer.iterations, 3)
    }

    func testParameterListedTwiceIsUpdatedOnce() {
        let parameter = Parameter("p", Tensor([0]))
        parameter.gradient = Tensor([1])
        SGD(learningRate: 0.5).update([parameter, parameter])
        assertClose(parameter.value, shape: [1], [-0.5], tolerance: 1e-6)
    }

    func testResetForgetsState() {
        // After reset the momentum is gone: the next step is −η g, not −η g + μ v.
        let parameter = Parameter("p", Tensor([0]))
        let optimizer = SGD(learningRate: 0.1, momentum: 0.9)
        train(optimizer, parameter, gradients: [[1]])
        optimizer.reset()
        XCTAssertEqual(optimizer.iterations, 0)
        train(optimizer, parameter, gradients: [[1]])
        assertClose(parameter.value, shape: [1], [-0.2], tolerance: 1e-6)
    }
}
