import Datasets
import Foundation
import Graph
import Layers
import XCTest
@testable import UnrollCLI
import Train

/// Runs the tool in-process and returns its exit status and everything it wrote.
func runTool(_ arguments: [String]) -> (status: Int32, output: String) {
    var output = ""
    let status = CLI.run(arguments, output: &output)
    return (status, output)
}

/// A fresh temporary directory, removed when the test ends.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("unroll-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

final class CLIUsageTests: XCTestCase {
    func testTopLevelHelpListsEverySubcommand() {
        let (status, output) = runTool(["--help"])
        XCTAssertEqual(status, 0)
        for name in ["forecast", "train", "predict", "summary", "graph", "textgen", "addition", "quarterly", "gradient-flow", "bench"] {
            XCTAssertTrue(output.contains("\n  \(name) "), "help lists \(name):\n\(output)")
        }
    }

    func testEverySubcommandHasHelpListingItsOptions() {
        let expected = ["forecast": "--epochs N", "train": "--target NAME", "predict": "--model PATH",
                        "summary": "--units N", "graph": "--steps N", "textgen": "--temperature T", "addition": "--digits N", "quarterly": "--past N",
                        "gradient-flow": "--steps N", "bench": "--workload NAME"]
        for (name, option) in expected {
            let (status, output) = runTool([name, "--help"])
            XCTAssertEqual(status, 0, name)
            XCTAssertTrue(output.hasPrefix("USAGE: unroll \(name) "), output)
            XCTAssertTrue(output.contains(option), "\(name) help shows \(option):\n\(output)")
            XCTAssertTrue(output.contains("--help"), name)
        }
        XCTAssertEqual(runTool(["help", "graph"]).output, runTool(["graph", "-h"]).output)
    }

    func testUnknownSubcommandFailsListingTheSubcommands() {
        let (status, output) = runTool(["fly"])
        XCTAssertEqual(status, 2)
        XCTAssertTrue(output.hasPrefix("error: unknown subcommand 'fly'; available: forecast, train, predict, summary, "
                                       + "graph, textgen, addition, quarterly, gradient-flow, bench\n"), output)
    }

    func testMalformedValueNamesTheFlagTheValueAndWhatWasExpected() {
        let (status, output) = runTool(["graph", "--steps", "three"])
        XCTAssertEqual(status, 2)
        XCTAssertTrue(output.hasPrefix("error: option '--steps' expects a whole number from 1 to 1000, got 'three'\n"), output)
        XCTAssertTrue(output.contains("Run 'unroll graph --help' for usage."), output)
    }

    func testOutOfRangeAndUnknownChoicesAreRejected() {
        let zero = runTool(["summary", "--units", "0"])
        XCTAssertEqual(zero.status, 2)
        XCTAssertTrue(zero.output.contains("'--units' expects a whole number from 1 to 100000, got '0'"), zero.output)
        let cell = runTool(["summary", "--cell", "transformer"])
        XCTAssertEqual(cell.status, 2)
        XCTAssertTrue(cell.output.contains("'--cell' expects one of lstm, gru, rnn, peephole, indrnn, got 'transformer'"),
                      cell.output)
        let rate = runTool(["--learning-rate", "0"])
        XCTAssertEqual(rate.status, 2)
        XCTAssertTrue(rate.output.contains("'--learning-rate' expects a number above 0.0 and at most 10.0, got '0'"),
                      rate.output)
    }

    func testUnknownFlagOfTheDefaultJobIsNamed() {
        let (status, output) = runTool(["--epoch", "2"])
        XCTAssertEqual(status, 2)
        XCTAssertTrue(output.hasPrefix("error: unknown option '--epoch' for 'unroll'; it accepts --epochs,"), output)
    }

    func testMissingValueAndRepeatedFlagAreReported() {
        let missing = runTool(["bench", "--steps"])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.output.hasPrefix("error: option '--steps' needs a value (N)\n"), missing.output)
        let twice = runTool(["summary", "--units", "4", "--units=5"])
        XCTAssertEqual(twice.status, 2)
        XCTAssertTrue(twice.output.hasPrefix("error: option '--units' is given more than once\n"), twice.output)
        let valued = runTool(["summary", "--bidirectional=yes"])
        XCTAssertEqual(valued.status, 2)
        XCTAssertTrue(valued.output.hasPrefix("error: flag '--bidirectional' takes no value, got 'yes'\n"), valued.output)
    }

    func testRequiredOptionAndPositionalsAreChecked() {
        let noFile = runTool(["train", "--target", "y"])
        XCTAssertEqual(noFile.status, 2)
        XCTAssertTrue(noFile.output.hasPrefix("error: 'unroll train' expects one CSV file, got none\n"), noFile.output)
        let noTarget = runTool(["train", "data.csv"])
        XCTAssertEqual(noTarget.status, 2)
        XCTAssertTrue(noTarget.output.hasPrefix("error: option '--target NAME' is required\n"), noTarget.output)
        let extra = runTool(["summary", "extra"])
        XCTAssertEqual(extra.status, 2)
        XCTAssertTrue(extra.output.contains("expects no positional arguments, got 'extra'"), extra.output)
    }

    func testParserTakesInlineValuesNegativeNumbersAndDoubleDash() throws {
        let options: [OptionSpecification] = [.option("shift", "X", ""), .option("name", "S", ""), .flag("quiet", "")]
        let parsed = try Arguments(["--shift", "-2.5", "--name=a=b", "--quiet", "--", "--not-a-flag", "file"],
                                   command: "unroll test", options: options)
        XCTAssertEqual(try parsed.number("shift", default: 0, in: -10...10), -2.5)
        XCTAssertEqual(parsed.string("name"), "a=b")
        XCTAssertTrue(parsed.isSet("quiet"))
        XCTAssertEqual(parsed.positionals, ["--not-a-flag", "file"])
        XCTAssertEqual(try parsed.integer("missing", default: 7, in: 1...9), 7)
        let list = try Arguments(["--name", "a, b,c"], command: "unroll test", options: options)
        XCTAssertEqual(try list.list("name"), ["a", "b", "c"])
        let bad = try Arguments(["--name", "a,,b"], command: "unroll test", options: options)
        XCTAssertThrowsError(try bad.list("name")) { error in
            XCTAssertEqual((error as? UsageError)?.message,
                           "option '--name' expects comma-separated names such as 'a,b', got 'a,,b'")
        }
    }
}

final class CLISubcommandTests: XCTestCase {
    func testSummaryWithoutOptionsIsTheCourseModel() {
        let (status, output) = runTool(["summary"])
        XCTAssertEqual(status, 0, output)
        // LSTM: 4 gates × (1 input + 400 recurrent + 1 bias) × 400 = 643,200; Dense: 400 × 8 + 8 = 3,208.
        XCTAssertTrue(output.contains("│ lstm (LSTM)                     │ (None, 400)            │       643,200 │"), output)
        XCTAssertTrue(output.contains("│ dense (Dense)                   │ (None, 8)              │         3,208 │"), output)
        XCTAssertTrue(output.contains(" Total params: 646,408 (2.47 MB)"), output)
    }

    func testSummaryOptionsChangeTheModel() {
        let (status, output) = runTool(["summary", "--cell", "gru", "--units", "10", "--past", "5", "--future", "3",
                                        "--layers", "2", "--bidirectional"])
        XCTAssertEqual(status, 0, output)
        // Keras GRU with reset_after: 3 × (inputs + hidden + 2) × hidden per direction.
        // First: 3 × (1 + 10 + 2) × 10 × 2 = 780; second (20 inputs): 3 × (20 + 10 + 2) × 10 × 2 = 1,920.
        XCTAssertTrue(output.contains("(None, 5, 20)"), output)
        XCTAssertTrue(output.contains("780 │"), output)
        XCTAssertTrue(output.contains("1,920 │"), output)
        // Dense on the 20 concatenated features: 20 × 3 + 3 = 63.
        XCTAssertTrue(output.contains("│ dense (Dense)                   │ (None, 3)              │            63 │"), output)
    }

    func testGraphWritesTheHandCountedNodesOfASimpleRNN() throws {
        let file = try temporaryDirectory(self).appendingPathComponent("rnn.dot")
        let (status, output) = runTool(["graph", "--cell", "rnn", "--steps", "3", "--units", "4", "--out", file.path])
        XCTAssertEqual(status, 0, output)
        // Input, zero state, target (3 constants); kernel, bias, recurrent kernel (3 parameters); transpose and
        // reshape to time-major, x·W, +b (4); per step a slice, h·U, +, tanh (3 × 4); the loss: subtract,
        // square, sum, scale (4). 3 + 3 + 4 + 12 + 4 = 26.
        XCTAssertTrue(output.hasPrefix("Wrote \(file.path): 26 nodes,"), output)
        XCTAssertTrue(output.contains("\n  tanh       3\n"), output)
        XCTAssertTrue(output.contains("\n  matmul     4\n"), output)
        let dot = try String(contentsOf: file, encoding: .utf8)
        XCTAssertTrue(dot.hasPrefix("digraph \"rnn_unrolled\" {"))
        let nodeLines = dot.split(separator: "\n").filter { $0.trimmingCharacters(in: .whitespaces).hasPrefix("n") && $0.contains(" [label=") }
        XCTAssertEqual(nodeLines.count, 26)
        XCTAssertTrue(dot.contains("label=\"simplernn/t2\""), dot)
    }

    func testGraphReportsBytesKeptAndPeakWithCheckpointing() throws {
        let file = try temporaryDirectory(self).appendingPathComponent("gru.dot")
        func run(_ mode: String) throws -> (output: String, kept: Int, peak: Int) {
            let (status, output) = runTool(["graph", "--cell", "gru", "--steps", "40", "--units", "8", "--batch-size", "4",
                                            "--checkpointing", mode, "--out", file.path])
            XCTAssertEqual(status, 0, output)
            let line = try XCTUnwrap(output.split(separator: "\n").first { $0.hasPrefix("Kept for the backward pass: ") }, output)
            let numbers = line.split(separator: " ").compactMap { Int($0) }
            XCTAssertEqual(numbers.count, 2, String(line))
            return (output, numbers[0], numbers[1])
        }
        let (plain, checkpointed) = (try run("none"), try run("10"))
        XCTAssertEqual(plain.peak, plain.kept)
        XCTAssertTrue(checkpointed.output.split(separator: "\n").contains { $0.split(separator: " ") == ["checkpoint", "4"] },
                      checkpointed.output)
        XCTAssertLessThan(checkpointed.kept * 4, plain.kept, "kept \(checkpointed.kept) vs \(plain.kept)")
        XCTAssertGreaterThan(checkpointed.peak, checkpointed.kept)
        XCTAssertLessThan(checkpointed.peak * 2, plain.peak, "peak \(checkpointed.peak) vs \(plain.peak)")
    }

    func testGraphWithoutOutWritesDOTToTheStream() {
        let (status, output) = runTool(["graph", "--cell", "lstm", "--steps", "2", "--units", "3"])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.hasPrefix("digraph \"lstm_unrolled\" {"), output)
        XCTAssertTrue(output.contains("recurrent_kernel\\n[3, 12]"), output)
        XCTAssertTrue(output.hasSuffix("}\n"))
    }

    func testGraphPlanListsFusedKernelsAndMemory() throws {
        // An LSTM step's gate math (4 gate activations, c', tanh(c'), h') is one fused sweep forward and one
        // backward, per step (`f·c + i·g` one multiply-add super-instruction); the DOT groups each forward sweep's
        // records in a cluster.
        let (status, output) = runTool(["graph", "--plan", "--cell", "lstm", "--steps", "3", "--units", "4", "--batch-size", "2"])
        XCTAssertEqual(status, 0, output)
        let gateSweeps = output.split(separator: "\n").filter {
            $0.contains(" fused ") && $0.contains("sigmoid sigmoid tanh sigmoid multiply multiplyAdd tanh multiply")
        }
        XCTAssertEqual(gateSweeps.count, 3, output)
        // Each step's `x·Wₜ + h·U` is the recurrent GEMM accumulating into the projection's rows (no sweep).
        let accumulating = output.split(separator: "\n").filter { $0.contains(" accumulatingMatmul ") }
        // Step 0's h₀ is a zero constant: its product adds nothing and is not run.
        XCTAssertEqual(accumulating.filter { $0.contains("+= into") }.count, 2, "one per step after the first: \(output)")
        // The one-feature projection onto its bias is computed a step's rows at a time, where they are read.
        XCTAssertEqual(accumulating.filter { $0.contains("in each row") }.count, 3, "the projection's rows per step: \(output)")
        XCTAssertTrue(output.contains("kept for backward"), output)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("unroll-plan-\(UUID().uuidString).dot")
        defer { try? FileManager.default.removeItem(at: file) }
        XCTAssertEqual(runTool(["graph", "--plan", "--steps", "2", "--units", "3", "--out", file.path]).status, 0)
        let dot = try String(contentsOf: file, encoding: .utf8)
        XCTAssertTrue(dot.contains("label=\"kernel 2: fused sweep of 9 records\""), dot)
    }

    func testBenchPrintsParsableJSONForOneWorkload() throws {
        let (status, output) = runTool(["bench", "--steps", "1", "--warmup", "0", "--workload", "small-rnn", "--json"])
        XCTAssertEqual(status, 0, output)
        let lines = output.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, output)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        XCTAssertEqual(object["workload"] as? String, "small-rnn")
        let milliseconds = try XCTUnwrap(object["msPerStep"] as? Double)
        XCTAssertGreaterThan(milliseconds, 0)
    }

    func testBenchTruncatedTimesCompiledWindowsOnePlanPerWindowShape() {
        // small-rnn has 3 steps: BPTT(2) trains 0..<2, advances the state over step 0 and trains 1..<3 scoring
        // step 2: three plans (two windows and a forward one) however many epochs.
        let (status, output) = runTool(["bench", "--workload", "small-rnn", "--truncated", "2", "--steps", "2", "--warmup", "1"])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("BPTT(2, 2), compiled (3 plans): "), output)
        XCTAssertTrue(runTool(["bench", "--workload", "small-rnn", "--truncated", "2", "--steps", "1", "--eager"]).output
            .contains("BPTT(2, 2), eager: "))
        let (badStatus, message) = runTool(["bench", "--truncated", "3,2"])
        XCTAssertNotEqual(badStatus, 0)
        XCTAssertTrue(message.contains("'--truncated' expects K1 or K1,K2"), message)
    }

    func testBenchCountsTheCustomCellsMatrixProducts() throws {
        let (status, output) = runTool(["bench", "--steps", "1", "--warmup", "0", "--workload", "custom-mgu", "--json"])
        XCTAssertEqual(status, 0, output)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        XCTAssertEqual(object["workload"] as? String, "custom-mgu")
        // MGU(128) on [32, 100, 1] -> Dense(1). Projection x W [3200, 1]·[1, 256]: 1,638,400 forward and once
        // more for dW. Recurrent products [32, 128]·[128, 128] = 1,048,576 each: 2 per step forward; backward
        // 4 per step (input and weight) except the first h·U_f, whose h is the zero state. Dense: 8,192 x 3.
        let expected = 2 * 1_638_400 + (200 + 4 * 100 - 1) * 1_048_576 + 3 * 8192
        let useful = try XCTUnwrap(object["usefulGFLOPPerStep"] as? Double)
        XCTAssertEqual(useful, Double(expected) * 1e-9, accuracy: 1e-4)
        let ms = try XCTUnwrap(object["msPerStep"] as? Double), gflops = try XCTUnwrap(object["gflops"] as? Double)
        XCTAssertEqual(gflops, useful / (ms * 1e-3), accuracy: 0.01 + 0.002 * gflops)
        // What the tape keeps per time step, and a peak above the parameters and the Adam moments.
        XCTAssertGreaterThan(try XCTUnwrap(object["tapeBytesPerTimeStep"] as? Int), 10 * 32 * 128 * 4)
        XCTAssertGreaterThan(try XCTUnwrap(object["peakTensorBytes"] as? Int), 3 * 33_409 * 4)
    }

    func testBenchCountsALongSequencesProductsFromTwoPrefixes() throws {
        // gru-long at T = 40: the count extended from 8 and 16 steps equals recording all 40.
        var workload = try XCTUnwrap(BenchCommand.Workload.all.first { $0.name == "gru-long" })
        workload.timeSteps = 40
        let model = workload.makeModel()
        try model.compile(loss: .meanSquaredError, optimizer: Adam())
        let x = Tensor.randomUniform([workload.batchSize, 40, workload.featureCount], in: -1...1, seed: 1)
        let y = Tensor.zeros([workload.batchSize, workload.outputSize])
        let tape = Tape()
        _ = Loss.meanSquaredError(model(tape.constant(x)), tape.constant(y))
        let (forward, backward) = tape.matrixProductFLOPs
        XCTAssertEqual(BenchCommand.usefulFLOPs(of: model, x, y), forward + backward)
        XCTAssertGreaterThan(forward + backward, 40 * 16 * 128 * 384 * 2 * 3)
    }

    func testCustomGRUCellComputesTheBuiltInGRU() {
        let builtIn = GRUCell(hiddenSize: 5, seed: 3)
        builtIn.build(inputSize: 4)
        let custom = CustomGRUCell(hiddenSize: 5, seed: 9)
        custom.build(inputSize: 4)
        // Same weights: the built-in bias [2, 15] holds the input bias row, then the recurrent one.
        let bias = builtIn.parameters[2].value
        custom.parameters[0].value = builtIn.parameters[0].value
        custom.parameters[1].value = builtIn.parameters[1].value
        custom.parameters[2].value = bias.slice(along: 0, 0..<1).reshaped(to: [15]) + Tensor.ones([15])
        custom.parameters[3].value = bias.slice(along: 0, 1..<2).reshaped(to: [15]) - Tensor.ones([15])
        builtIn.parameters[2].value = Tensor.concatenate([custom.parameters[2].value.reshaped(to: [1, 15]),
                                                          custom.parameters[3].value.reshaped(to: [1, 15])], along: 0)
        let x = Tensor.randomUniform([3, 6, 4], in: -1...1, seed: 11)
        let expected = RNN(builtIn, returnSequences: true)(Node(x)).value
        let actual = RNN(custom, returnSequences: true)(Node(x)).value
        XCTAssertEqual(actual.shape, [3, 6, 5])
        let worst = zip(actual.scalars, expected.scalars).map { Swift.abs($0 - $1) }.max() ?? 1
        XCTAssertLessThan(worst, 1e-6)
    }

    func testBenchSequenceLengthOverridesOnlyTheLongGRU() {
        let (status, output) = runTool(["bench", "--workload", "gru-long", "--sequence-length", "3", "--steps", "1",
                                        "--warmup", "0"])
        XCTAssertEqual(status, 0, output)
        // GRU(128) on 8 features, reset_after: 3 × (8 + 128 + 2) × 128 = 52,992; Dense(1): 129.
        XCTAssertTrue(output.contains("\ngru-long   GRU(128) on [16, 3, 8] -> Dense(1)"), output)
        XCTAssertTrue(output.contains(" 53121 "), output)
    }

    func testBenchSweepReportsMemoryThatCheckpointingShrinks() throws {
        func run(_ mode: String) throws -> [[String: Any]] {
            let (status, output) = runTool(["bench", "--workload", "gru-long", "--sequence-length", "16,64", "--steps", "1",
                                            "--warmup", "0", "--checkpointing", mode, "--json"])
            XCTAssertEqual(status, 0, output)
            return try output.split(separator: "\n").map {
                try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
        }
        let (plain, checkpointed) = (try run("none"), try run("auto"))
        XCTAssertEqual(plain.map { $0["timeSteps"] as? Int }, [16, 64])
        XCTAssertEqual(checkpointed.map { $0["timeSteps"] as? Int }, [16, 64])
        for (a, b) in zip(plain, checkpointed) {
            let (keptA, keptB) = (try XCTUnwrap(a["tapeBytesKept"] as? Int), try XCTUnwrap(b["tapeBytesKept"] as? Int))
            let (peakA, peakB) = (try XCTUnwrap(a["tapeBytesPeak"] as? Int), try XCTUnwrap(b["tapeBytesPeak"] as? Int))
            XCTAssertEqual(peakA, keptA, "nothing is rebuilt without checkpointing")
            XCTAssertLessThan(keptB * 10, keptA, "kept with checkpointing \(keptB) vs \(keptA)")
            XCTAssertLessThan(peakB * 2, peakA, "peak with checkpointing \(peakB) vs \(peakA)")
            XCTAssertGreaterThan(try XCTUnwrap(b["peakResidentBytes"] as? Int), 1_000_000)
            XCTAssertGreaterThan(try XCTUnwrap(b["processorMsPerStep"] as? Double), 0)
        }
        let (status, output) = runTool(["bench", "--checkpointing", "0"])
        XCTAssertEqual(status, 2)
        XCTAssertTrue(output.contains("'--checkpointing' expects none, auto or a whole number"), output)
    }

    func testGradientFlowDrawsTheThreeCellsOnALogarithmicAxis() throws {
        let file = try temporaryDirectory(self).appendingPathComponent("flow.svg")
        let (status, output) = runTool(["gradient-flow", "--steps", "100", "--units", "8", "--batch-size", "4", "--out", file.path])
        XCTAssertEqual(status, 0, output)
        let svg = try String(contentsOf: file, encoding: .utf8)
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 3, svg)
        for name in ["SimpleRNN", "LSTM", "GRU"] { XCTAssertTrue(svg.contains(">\(name)</text>"), name) }
        // The printed first/last ratios: untrained, the SimpleRNN's gradient at step 0 is a far smaller part of
        // its last than the LSTM's (the zero-bias GRU's is smaller still: its update gate starts near 0.5).
        let ratios = Dictionary(uniqueKeysWithValues: output.split(separator: "\n").compactMap { line -> (String, Double)? in
            let fields = line.split(separator: " ")
            guard let name = fields.first, ["SimpleRNN", "LSTM", "GRU"].contains(String(name)), let ratio = Double(fields.last!) else { return nil }
            return (String(name), ratio)
        })
        XCTAssertEqual(ratios.count, 3, output)
        XCTAssertLessThan(ratios["SimpleRNN"]! * 10, ratios["LSTM"]!, output)
        XCTAssertLessThan(ratios["GRU"]!, ratios["SimpleRNN"]!, output)
    }

    func testGraphRecordsEveryCell() {
        // One step of each cell: its parameters appear as boxes named as in Keras.
        let parameters = ["lstm": "recurrent_kernel\\n[2, 8]", "gru": "recurrent_kernel\\n[2, 6]",
                          "rnn": "recurrent_kernel\\n[2, 2]", "peephole": "recurrent_kernel\\n[2, 8]",
                          "indrnn": "kernel\\n[1, 2]"]
        for cell in CellKind.names {
            let (status, output) = runTool(["graph", "--cell", cell, "--steps", "1", "--units", "2"])
            XCTAssertEqual(status, 0, "\(cell): \(output)")
            XCTAssertTrue(output.contains(parameters[cell]!), "\(cell): \(output)")
        }
    }

    func testBenchRejectsAnUnknownWorkload() {
        let (status, output) = runTool(["bench", "--workload", "big-lstm"])
        XCTAssertEqual(status, 2)
        XCTAssertTrue(output.contains("'--workload' expects one of seed-lstm, small-rnn, gru-long, char-lstm, custom-mgu, gru-custom, got 'big-lstm'"),
                      output)
    }

    func testBenchTableReportsTheWorkloadAndItsParameterCount() {
        let (status, output) = runTool(["bench", "--steps", "1", "--warmup", "0", "--workload", "small-rnn"])
        XCTAssertEqual(status, 0, output)
        // SimpleRNN(16) on 1 feature: 16 × (1 + 16) + 16 = 288; Dense(1): 17.
        XCTAssertTrue(output.contains("small-rnn  SimpleRNN(16) on [13, 3, 1] -> Dense(1)"), output)
        XCTAssertTrue(output.contains(" 305 "), output)
    }

    func testTextGenerationRunsAndContinuesTheSeedText() {
        let (status, output) = runTool(["textgen", "--epochs", "1", "--units", "8", "--sequence-length", "8",
                                        "--batch-size", "256", "--length", "25", "--seed-text", "Alice"])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("38 distinct"), output)
        XCTAssertTrue(output.contains("  epoch 1/1  loss "), output)
        let generated = output.split(separator: "\n").last.map(String.init) ?? ""
        XCTAssertTrue(generated.hasPrefix("alice"), output)
        XCTAssertEqual(generated.count, "alice".count + 25, output)
    }

    func testTextGenerationRejectsSeedTextOutsideTheVocabulary() {
        let (status, output) = runTool(["textgen", "--epochs", "1", "--units", "4", "--sequence-length", "4",
                                        "--batch-size", "512", "--seed-text", "zebra#"])
        XCTAssertEqual(status, 2)
        XCTAssertTrue(output.contains("option '--seed-text' holds '#', which is not in the text's vocabulary"), output)
    }

    func testSamplingAtALowTemperatureTakesTheLargestLogit() {
        var generator = SeededGenerator(seed: 3)
        for _ in 0..<20 {
            XCTAssertEqual(TextGenerationCommand.sample(logits: [0, 5, 1, 4.5], temperature: 0.01, generator: &generator), 1)
        }
        // At temperature 1, index 0 of [log 1, log 3] is drawn about a quarter of the time.
        var zeros = 0
        for _ in 0..<4_000 where TextGenerationCommand.sample(logits: [0, Float(Foundation.log(3.0))], temperature: 1,
                                                               generator: &generator) == 0 {
            zeros += 1
        }
        XCTAssertEqual(Double(zeros) / 4_000, 0.25, accuracy: 0.03)
    }
}

final class TrainPredictTests: XCTestCase {
    /// A noiseless ramp with a second column: `y = 2t + 1`, `x = t mod 3`.
    func writeRamp(rows: Int, to directory: URL) throws -> URL {
        let lines = ["t,x,y"] + (0..<rows).map { "\($0),\($0 % 3),\(2 * $0 + 1)" }
        let url = directory.appendingPathComponent("ramp.csv")
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func testLevelWindowingScalesRawValues() throws {
        let directory = try temporaryDirectory(self)
        let csv = try writeRamp(rows: 40, to: directory)
        let modelDirectory = directory.appendingPathComponent("model")
        let trained = runTool(["train", csv.path, "--target", "y", "--past", "4", "--epochs", "1", "--windowing", "levels",
                               "--scaler", "minmax", "--out", modelDirectory.path])
        XCTAssertEqual(trained.status, 0, trained.output)
        let preprocessing = try SavedForecaster(directory: modelDirectory).preprocessing
        XCTAssertEqual(preprocessing.windowing, "levels")
        // 36 windows, 28 train: their inputs cover rows 0..<31, where y runs from 1 to 61.
        XCTAssertEqual(preprocessing.minMaxScaler?.minimums, [1])
        XCTAssertEqual(preprocessing.minMaxScaler?.maximums, [61])
        let bad = runTool(["train", csv.path, "--target", "y", "--windowing", "ratios"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("--windowing"), bad.output)
    }

    func testTrainSavesAModelThatPredictLoadsAndUses() throws {
        let directory = try temporaryDirectory(self)
        let csv = try writeRamp(rows: 40, to: directory)
        let modelDirectory = directory.appendingPathComponent("model")
        let trained = runTool(["train", csv.path, "--target", "y", "--features", "x", "--past", "4", "--future", "2",
                               "--cell", "gru", "--units", "6", "--epochs", "3", "--batch-size", "8",
                               "--validation-split", "0.25", "--scaler", "minmax", "--out", modelDirectory.path])
        XCTAssertEqual(trained.status, 0, trained.output)
        // 40 rows give 40 - 4 - 2 + 1 = 35 windows: floor(35 × 0.8) = 28 train, 7 test.
        XCTAssertTrue(trained.output.contains("35 windows of 4 -> 2 steps: 28 train, 7 test (7 of the training ones validate)."),
                      trained.output)
        XCTAssertTrue(trained.output.contains("val_loss"), trained.output)
        // The naive forecast repeats the last input value; each test window's two targets are 2 and 4 above it,
        // so its RMSE is sqrt((2² + 4²) / 2) = sqrt(10).
        XCTAssertTrue(trained.output.contains("naive (last value) 3.162."), trained.output)
        for file in ["model.json", "model.safetensors", "preprocessing.json", "loss.svg", "manifest.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: modelDirectory.appendingPathComponent(file).path), file)
        }
        // The loss curve: three epochs of training loss and of validation loss, on a logarithmic axis.
        let lossPlot = try String(contentsOf: modelDirectory.appendingPathComponent("loss.svg"), encoding: .utf8)
        XCTAssertEqual(lossPlot.components(separatedBy: "<polyline").count - 1, 2, lossPlot)
        XCTAssertTrue(lossPlot.contains(">validation loss</text>"), lossPlot)
        let firstLine = try XCTUnwrap(lossPlot.components(separatedBy: "<polyline points=\"").dropFirst().first)
        XCTAssertEqual(firstLine.prefix(while: { $0 != "\"" }).split(separator: " ").count, 3, lossPlot)
        let preprocessing = try SavedForecaster(directory: modelDirectory).preprocessing
        XCTAssertEqual(preprocessing.features, ["x", "y"])
        XCTAssertEqual(preprocessing.targetColumn, 1)
        // With the default windowing (changes) the scaler saw the training windows relative to their last row:
        // x - x_last lies in -2...2 and y - y_last in -6...0.
        XCTAssertEqual(preprocessing.windowing, "changes")
        XCTAssertEqual(preprocessing.minMaxScaler?.minimums, [-2, -6])
        XCTAssertEqual(preprocessing.minMaxScaler?.maximums, [2, 0])

        let predicted = runTool(["predict", csv.path, "--model", modelDirectory.path, "--windows", "2"])
        XCTAssertEqual(predicted.status, 0, predicted.output)
        let lines = predicted.output.split(separator: "\n")
        XCTAssertEqual(lines.count, 3, predicted.output)
        XCTAssertTrue(lines[1].hasPrefix("  after row 39: "), predicted.output)
        XCTAssertTrue(lines[2].hasPrefix("  after row 40: "), predicted.output)
        XCTAssertEqual(lines[2].split(separator: ",").count, 2, predicted.output)

        // predict's numbers are the loaded model's: the same forecast computed here from the saved files.
        let model = try Sequential.load(from: modelDirectory)
        let table = try CSVTable(contentsOf: csv)
        let last = try table.numericColumns(["x", "y"]).slice(along: 0, 36..<40).reshaped(to: [1, 4, 2])
        let expected = try preprocessing.forecast(try model.predict(try preprocessing.modelInputs(last)), inputs: last).scalars
        XCTAssertEqual(String(lines[2]), "  after row 40: " + expected.map { String(format: "%.6g", $0) }.joined(separator: ", "))
    }

    func testTrainReportsAMissingColumnWithTheFile() throws {
        let directory = try temporaryDirectory(self)
        let csv = try writeRamp(rows: 20, to: directory)
        let (status, output) = runTool(["train", csv.path, "--target", "z", "--out", directory.appendingPathComponent("model").path])
        XCTAssertEqual(status, 1)
        XCTAssertEqual(output, "error: \(csv.path) has no column 'z'; available columns: 't', 'x', 'y'.\n")
    }

    func testPredictWithoutAModelDirectoryFails() throws {
        let directory = try temporaryDirectory(self)
        let csv = try writeRamp(rows: 20, to: directory)
        let (status, output) = runTool(["predict", csv.path, "--model", directory.appendingPathComponent("none").path])
        XCTAssertEqual(status, 1)
        XCTAssertEqual(output, "error: \(directory.path)/none/model.json: no such file\n")
    }
}
