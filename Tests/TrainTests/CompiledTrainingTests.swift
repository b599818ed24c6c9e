import Datasets
import Graph
import Layers
import TestSupport
import Train
import XCTest

/// Training with compiled plans (`compile(..., jitCompile: true)`, the default) follows eager training.
final class CompiledTrainingTests: XCTestCase {
    func rampData() throws -> (x: Tensor, y: Tensor) {
        let series = (0..<40).map { 0.1 + 0.02 * Float($0) }
        let windows = try Windows(series: series, pastSteps: 4, futureSteps: 1)
        return (windows.inputs, windows.flattenedTargets)
    }

    func train(_ makeLayers: () -> [Layer], jitCompile: Bool, epochs: Int = 40) throws -> (Sequential, History) {
        Initializers.resetSeedSequence(to: 42)
        let (x, y) = try rampData()
        let model = Sequential(makeLayers() + [Dense(outputSize: 1)])
        try model.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.01), metrics: [.meanAbsoluteError], jitCompile: jitCompile)
        // 36 windows in batches of 16: two full batches and a partial one of 4, which gets its own plan.
        let history = try model.fit(x, y, epochs: epochs, batchSize: 16, validationSplit: 0.1, verbose: .silent, seed: 7)
        return (model, history)
    }

    func checkFollowsEager(_ makeLayers: () -> [Layer], _ label: String) throws {
        let (eagerModel, eager) = try train(makeLayers, jitCompile: false)
        let (compiledModel, compiled) = try train(makeLayers, jitCompile: true)
        XCTAssertNil(eagerModel.compiledTrainingPlan(inputShape: [16, 4, 1], targetShape: [16, 1]), "\(label): eager model compiled")
        XCTAssertNotNil(compiledModel.compiledTrainingPlan(inputShape: [16, 4, 1], targetShape: [16, 1]), "\(label): no plan for full batches")
        // 36 - 3 held out = 33 = 16 + 16 + 1.
        XCTAssertNotNil(compiledModel.compiledTrainingPlan(inputShape: [1, 4, 1], targetShape: [1, 1]), "\(label): no plan for the partial batch")
        for key in ["loss", "mae", "val_loss"] {
            let a = eager[key], b = compiled[key]
            XCTAssertEqual(a.count, b.count, "\(label) \(key) epochs")
            for (epoch, (x, y)) in zip(a, b).enumerated() {
                XCTAssertEqual(y, x, accuracy: 1e-5 * max(abs(x), 1e-6), "\(label) \(key) at epoch \(epoch + 1)")
            }
        }
        XCTAssertLessThan(compiled["loss"].last!, compiled["loss"].first! / 5, "\(label): compiled training did not learn")
        for (a, b) in zip(eagerModel.weights, compiledModel.weights) { assertClose(b, a, tolerance: 1e-4, "\(label) weights") }
    }

    func testLSTMFollowsEagerOnTheRamp() throws {
        try checkFollowsEager({ [LSTM(hiddenSize: 16, inputShape: [4, 1])] }, "LSTM")
    }

    func testGRUFollowsEagerOnTheRamp() throws {
        try checkFollowsEager({ [GRU(hiddenSize: 16, inputShape: [4, 1])] }, "GRU")
    }

    func testStackedLSTMFollowsEagerOnTheRamp() throws {
        try checkFollowsEager({ [LSTM(hiddenSize: 12, inputShape: [4, 1], returnSequences: true), LSTM(hiddenSize: 12)] },
                              "stacked LSTM")
    }

    func testPredictionsOfEveryBatchShapeMatchEager() throws {
        let (model, _) = try train({ [GRU(hiddenSize: 8, inputShape: [4, 1])] }, jitCompile: true, epochs: 2)
        let (x, _) = try rampData()
        let compiled = try model.predict(x, batchSize: 10)
        let again = try model.predict(x, batchSize: 10)
        let eager = model(Node(x)).value
        assertClose(compiled, eager, tolerance: 1e-6, "predictions in batches of 10, 10, 10, 6")
        XCTAssertEqual(compiled, again, "a replayed prediction differs")
    }

    func testStructureChangeDropsEveryPlan() throws {
        let (model, _) = try train({ [LSTM(hiddenSize: 8, inputShape: [4, 1])] }, jitCompile: true, epochs: 1)
        XCTAssertNotNil(model.compiledTrainingPlan(inputShape: [16, 4, 1], targetShape: [16, 1]))
        try model.compile(loss: .meanAbsoluteError, optimizer: Adam())
        XCTAssertNil(model.compiledTrainingPlan(inputShape: [16, 4, 1], targetShape: [16, 1]), "compile kept a plan")
        let (x, y) = try rampData()
        _ = try model.trainOnBatch(x.slice(along: 0, 0..<16), y.slice(along: 0, 0..<16))
        XCTAssertNotNil(model.compiledTrainingPlan(inputShape: [16, 4, 1], targetShape: [16, 1]))
        model.add(Dense(outputSize: 1))
        XCTAssertNil(model.compiledTrainingPlan(inputShape: [16, 4, 1], targetShape: [16, 1]), "add kept a plan")
    }

    func testLayersThatCannotBeTracedRunEagerly() throws {
        let (model, _) = try train({ [LSTM(hiddenSize: 8, inputShape: [4, 1]), Dropout(rate: 0.5, seed: 1)] },
                                   jitCompile: true, epochs: 1)
        XCTAssertNil(model.compiledTrainingPlan(inputShape: [16, 4, 1], targetShape: [16, 1]), "dropout's mask was frozen")
        let stateful = LSTM(hiddenSize: 8, inputShape: [4, 1], isStateful: true)
        XCTAssertFalse(stateful.supportsCompilation)
        XCTAssertTrue(Dropout(rate: 0).supportsCompilation)
    }
}
