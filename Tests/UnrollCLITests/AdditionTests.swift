import Graph
import Train
@testable import UnrollCLI
import XCTest

/// The addition example on small settings: its data, the agreement of step-by-step decoding with the
/// trained graph, and the command's output.
final class AdditionTests: XCTestCase {
    func testQuestionsAreReversedAndAnswersShiftedForTeacherForcing() {
        let task = AdditionTask(digits: 3)
        let text = { (codes: [Int]) in String(codes.map { AdditionTask.alphabet[$0] }) }
        XCTAssertEqual(text(task.encode(535, 61)), " 16+535")
        XCTAssertEqual(text(task.answerCharacters(535, 61)), "596 ")
        let (x, y) = task.arrays([(535, 61)])
        XCTAssertEqual(x.map(\.shape), [[1, 7, 13], [1, 4, 13]])
        XCTAssertEqual(y[0].scalars, task.answerCharacters(535, 61).map(Float.init))
        let decoderInput = x[1].argmax(alongAxis: 2)
        XCTAssertEqual(text(decoderInput), "=596")
        let (train, heldOut) = task.questions(count: 200, seed: 4)
        XCTAssertEqual(train.count, 180)
        XCTAssertEqual(heldOut.count, 20)
        let keys = (train + heldOut).map { Set([$0.0, $0.1]) }
        XCTAssertEqual(Set(keys).count, 200, "no question repeats, in either order")
    }

    /// Greedy decoding one step at a time, fed back into the teacher-forced graph, must reproduce itself:
    /// the carried state equals what the whole-sequence model computes.
    func testStepwiseDecodingAgreesWithTheWholeModel() throws {
        let task = AdditionTask(digits: 2)
        let network = try task.makeModel(hiddenSize: 16, seed: 5)
        try network.model.compile(loss: .sparseCategoricalCrossEntropy(fromLogits: true), optimizer: Adam(learningRate: 0.01))
        let questions = task.questions(count: 60, seed: 6).train
        let (x, y) = task.arrays(questions)
        try network.model.fit(x, y, epochs: 2, batchSize: 16, verbose: .silent)
        let decoded = task.answers(network, questions)
        var fed = Tensor.zeros(x[1].shape)
        let symbols = AdditionTask.alphabet.count
        fed.withUnsafeMutableBufferPointer { p in
            for (row, tokens) in decoded.enumerated() {
                for (step, token) in ([task.index("=")] + tokens.dropLast()).enumerated() {
                    p[(row * task.answerLength + step) * symbols + token] = 1
                }
            }
        }
        let logits = try network.model.predict([x[0], fed])[0]
        XCTAssertEqual(logits.argmax(alongAxis: 2), decoded.flatMap { $0 })
    }

    func testCommandPrintsHeldOutAccuracyLast() {
        let (status, output) = runTool(["addition", "--digits", "1", "--samples", "40", "--epochs", "2", "--units", "8"])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.hasPrefix("Addition with up to 1 digit(s): 36 training and 4 held-out questions.\n"), output)
        XCTAssertTrue(output.contains("  epoch 2/2  loss "), output)
        let last = output.split(separator: "\n").last.map(String.init) ?? ""
        XCTAssertTrue(last.hasPrefix("Held-out exact-match accuracy: "), output)
        XCTAssertTrue(last.contains("(4 questions, "), output)
        let (badStatus, badOutput) = runTool(["addition", "--digits", "1", "--samples", "60"])
        XCTAssertEqual(badStatus, 2)
        XCTAssertTrue(badOutput.contains("option '--samples' is 60, but there are only 55 distinct questions with 1 digit(s)"), badOutput)
    }
}
