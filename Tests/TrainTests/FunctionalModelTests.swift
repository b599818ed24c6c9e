import Graph
import Layers
import TestSupport
import Train
import XCTest

/// Functional models: wiring, Keras' summary numbers, shared layers, errors at construction, equality
/// with the same stack as a `Sequential`. Keras' numbers come from Keras 3.15 (`keras.Model(...).summary()`).
final class FunctionalModelTests: XCTestCase {
    /// Keras' addition_rnn encoder–decoder: 7 characters in, 4 out, 12 symbols, 128 units.
    func seq2seq() throws -> Model {
        let encoderInputs = Input(shape: [7, 12]), decoderInputs = Input(shape: [4, 12])
        let (_, h, c) = LSTM(hiddenSize: 128, seed: 1)(encoderInputs)
        let decoded = LSTM(hiddenSize: 128, returnSequences: true, seed: 2)(decoderInputs, initialState: [h, c])
        let probabilities = Dense(outputSize: 12, activation: .softmax, seed: 3)(decoded)
        return try Model(inputs: [encoderInputs, decoderInputs], outputs: [probabilities])
    }

    func testSeq2seqSummaryMatchesKeras() throws {
        let model = try seq2seq()
        XCTAssertEqual(model.layerNames, ["input_layer", "input_layer_1", "lstm", "lstm_1", "dense"])
        XCTAssertEqual(model.parameterCount, 145_932)
        let summary = model.summary()
        let lines = summary.split(separator: "\n").map(String.init)
        func row(_ name: String) -> [String] {
            let start = lines.firstIndex { $0.hasPrefix("│ " + name + " ") }!
            let end = lines[start...].firstIndex { !$0.hasPrefix("│") }!
            return Array(lines[start..<end])
        }
        XCTAssertTrue(row("lstm (LSTM)")[0].contains("[(None, 128), (None, 128), (None, 128)]"), summary)
        XCTAssertTrue(row("lstm (LSTM)")[0].contains("72,192 │ input_layer[0][0]"), summary)
        let decoder = row("lstm_1 (LSTM)")
        XCTAssertEqual(decoder.count, 3, summary)
        XCTAssertTrue(decoder[0].contains("(None, 4, 128)"), summary)
        XCTAssertTrue(decoder[0].contains("72,192 │ input_layer_1[0][0],"), summary)
        XCTAssertTrue(decoder[1].contains("lstm[0][1],"), summary)
        XCTAssertTrue(decoder[2].contains("lstm[0][2]"), summary)
        XCTAssertTrue(row("dense (Dense)")[0].contains("(None, 4, 12)"), summary)
        XCTAssertTrue(row("dense (Dense)")[0].contains("1,548 │ lstm_1[0][0]"), summary)
        XCTAssertTrue(row("input_layer (InputLayer)")[0].contains("(None, 7, 12)"), summary)
        XCTAssertTrue(summary.contains(" Total params: 145,932 (570.05 KB)"), summary)
        XCTAssertTrue(summary.contains(" Non-trainable params: 0 (0.00 B)"), summary)
    }

    func testTwoInputSummaryMatchesKeras() throws {
        let series = Input(shape: [8, 1]), quarter = Input(shape: [4])
        let features = Concatenate()([LSTM(hiddenSize: 16)(series), quarter])
        let model = try Model(inputs: [series, quarter], outputs: [Dense(outputSize: 1)(features)])
        // Keras lists lstm before the second input: layers go deepest first, then in traversal order.
        XCTAssertEqual(model.layerNames, ["input_layer", "lstm", "input_layer_1", "concatenate", "dense"])
        XCTAssertEqual(model.parameterCount, 1_173)
        XCTAssertEqual(model.summary(), """
            Model: "functional"
            ┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━┓
            ┃ Layer (type)               ┃ Output Shape      ┃    Param # ┃ Connected to        ┃
            ┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━┩
            │ input_layer (InputLayer)   │ (None, 8, 1)      │          0 │ -                   │
            ├────────────────────────────┼───────────────────┼────────────┼─────────────────────┤
            │ lstm (LSTM)                │ (None, 16)        │      1,152 │ input_layer[0][0]   │
            ├────────────────────────────┼───────────────────┼────────────┼─────────────────────┤
            │ input_layer_1 (InputLayer) │ (None, 4)         │          0 │ -                   │
            ├────────────────────────────┼───────────────────┼────────────┼─────────────────────┤
            │ concatenate (Concatenate)  │ (None, 20)        │          0 │ lstm[0][0],         │
            │                            │                   │            │ input_layer_1[0][0] │
            ├────────────────────────────┼───────────────────┼────────────┼─────────────────────┤
            │ dense (Dense)              │ (None, 1)         │         21 │ concatenate[0][0]   │
            └────────────────────────────┴───────────────────┴────────────┴─────────────────────┘
             Total params: 1,173 (4.58 KB)
             Trainable params: 1,173 (4.58 KB)
             Non-trainable params: 0 (0.00 B)

            """)
    }

    func testSharedLayerAppearsOnceAndSumsItsGradients() throws {
        let a = Input(shape: [3])
        let dense = Dense(outputSize: 4, seed: 7)
        let sum = Add()([dense(a), dense(a)])
        let model = try Model(inputs: a, outputs: RepeatVector(5)(Multiply()([sum, sum])))
        XCTAssertEqual(model.layerNames, ["input_layer", "dense", "add", "multiply", "repeat_vector"])
        XCTAssertEqual(model.parameterCount, 16)
        let summary = model.summary()
        XCTAssertTrue(summary.contains("16 │ input_layer[0][0],"), summary)
        XCTAssertTrue(summary.contains("dense[0][0],"), summary)
        XCTAssertTrue(summary.contains("dense[1][0]"), summary)
        XCTAssertTrue(summary.contains("(None, 5, 4)"), summary)

        // y = dense(x1) + dense(x2): the kernel's gradient of sum(y) is x1ᵀ·1 + x2ᵀ·1, one gradient summed.
        let x1 = Input(shape: [3]), x2 = Input(shape: [3])
        let shared = Dense(outputSize: 2, seed: 3)
        let twoInputs = try Model(inputs: [x1, x2], outputs: [Add()([shared(x1), shared(x2)])])
        XCTAssertEqual(twoInputs.parameters.count, 2)
        let u = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6]), v = Tensor(shape: [2, 3], scalars: [-1, 0, 2, 1, 1, 1])
        let tape = Tape()
        tape.backward(from: twoInputs([tape.constant(u), tape.constant(v)])[0].sum())
        let (us, vs) = (u.scalars, v.scalars)
        var expected: [Float] = []
        for j in 0..<3 {
            let columnSum: Float = us[j] + us[3 + j] + vs[j] + vs[3 + j]
            expected += [columnSum, columnSum]
        }
        assertClose(shared.kernel!.gradient!, shape: [3, 2], expected)
        assertClose(shared.bias!.gradient!, shape: [2], [4, 4])
    }

    func testEqualsTheSameSequentialInOutputsAndGradients() throws {
        let x = Tensor(shape: [3, 5, 2], scalars: (0..<30).map { Float($0 % 7) * 0.1 - 0.3 })
        func run(_ forward: (Node) -> Node, _ parameters: [Parameter]) -> (Tensor, [Tensor]) {
            let tape = Tape()
            let y = forward(tape.constant(x))
            tape.backward(from: square(y).sum())
            defer { parameters.forEach { $0.zeroGradient() } }
            return (y.value, parameters.map { $0.gradient! })
        }
        let sequential = Sequential([LSTM(hiddenSize: 4, inputShape: [5, 2], returnSequences: true, seed: 1),
                                     GRU(hiddenSize: 3, seed: 2), Dense(outputSize: 2, seed: 3)])
        try sequential.compile(loss: .meanSquaredError, optimizer: SGD())
        let input = Input(shape: [5, 2])
        let output = sequential.layers.reduce(input) { $1($0) }
        let model = try Model(inputs: input, outputs: output)
        XCTAssertEqual(model.layerNames, ["input_layer", "lstm", "gru", "dense"])
        let (expected, expectedGradients) = run({ sequential($0) }, sequential.parameters)
        let (actual, gradients) = run({ model($0) }, model.parameters)
        XCTAssertEqual(actual.scalars, expected.scalars)
        XCTAssertEqual(gradients.count, expectedGradients.count)
        for (g, e) in zip(gradients, expectedGradients) { XCTAssertEqual(g.scalars, e.scalars) }
    }

    func testDecoderStartsFromTheEncoderState() throws {
        let model = try seq2seq()
        let encoder = model.layers[2] as! LSTM, decoder = model.layers[3] as! LSTM, dense = model.layers[4] as! Dense
        let source = Tensor(shape: [2, 7, 12], scalars: (0..<168).map { Float(($0 * 5) % 11) / 11 })
        let target = Tensor(shape: [2, 4, 12], scalars: (0..<96).map { Float(($0 * 3) % 7) / 7 })
        let (_, state) = encoder(Node(source), initialState: nil)
        let expected = dense(decoder(Node(target), initialState: state).output).value
        assertClose(model([Node(source), Node(target)])[0].value, expected, tolerance: 0)
        let zeroStart = dense(decoder(Node(target))).value
        XCTAssertGreaterThan(relativeError(expected, zeroStart), 1e-3, "the initial state must matter")
    }

    func testTapeShowsLayerScopesAndDOTShowsTheGraph() throws {
        let model = try seq2seq()
        let tape = Tape()
        _ = model([tape.constant(Tensor.zeros([1, 7, 12])), tape.constant(Tensor.zeros([1, 4, 12]))])
        let scopes = Set(tape.nodes.map(\.scope))
        XCTAssertTrue(scopes.contains("lstm/lstm/t6"), "\(scopes.sorted().prefix(5))")
        XCTAssertTrue(scopes.contains("lstm_1/lstm/t0"))
        XCTAssertTrue(scopes.contains("dense"))
        XCTAssertEqual(model.edges.map { "\($0.from)->\($0.to)" },
                       ["input_layer->lstm", "input_layer_1->lstm_1", "lstm->lstm_1", "lstm->lstm_1", "lstm_1->dense"])
        let dot = model.dot()
        XCTAssertTrue(dot.contains("l2 [label=\"{lstm (LSTM)|{input: (None, 7, 12)|output: (None, 128), (None, 128), (None, 128)}}\"];"), dot)
        XCTAssertTrue(dot.contains("l2 -> l3;"), dot)
        XCTAssertTrue(dot.contains("l0 -> l2;"), dot)
    }

    func testWiringLayersComputeWhatTheySay() throws {
        let a = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]), b = Tensor(shape: [2, 1], scalars: [5, 6])
        XCTAssertEqual(Concatenate()([Node(a), Node(b)]).value.scalars, [1, 2, 5, 3, 4, 6])
        XCTAssertEqual(Concatenate(axis: 0)([Node(a), Node(a)]).shape, [2, 4])
        XCTAssertEqual(Multiply()([Node(a), Node(a)]).value.scalars, [1, 4, 9, 16])
        XCTAssertEqual(RepeatVector(2)(Node(a)).value.scalars, [1, 2, 1, 2, 3, 4, 3, 4])
        let dense = Dense(inputSize: 2, outputSize: 1, seed: 1)
        let sequence = Tensor(shape: [1, 2, 2], scalars: [1, 2, 3, 4])
        XCTAssertEqual(TimeDistributed(dense)(Node(sequence)).value.scalars, dense(Node(sequence)).value.scalars)
        let doubled = Lambda { $0 * 2 }
        XCTAssertEqual(doubled(Node(a)).value.scalars, [2, 4, 6, 8])
        checkGradients([a, b], "concatenate") { Concatenate()([$0[0], $0[1]]) }
        checkGradients([a], "repeat vector") { RepeatVector(3)($0[0]) }
        checkGradients([sequence], "time distributed") { TimeDistributed(dense)($0[0]) }
    }

    func testWrongWiringThrowsAtConstructionNamingLayersAndShapes() throws {
        let input = Input(shape: [6, 3])
        let flat = Dense(outputSize: 4)(LSTM(hiddenSize: 5)(input))
        let badRecurrent = GRU(hiddenSize: 2)(flat)
        XCTAssertThrowsError(try Model(inputs: input, outputs: Dense(outputSize: 1)(badRecurrent))) { error in
            XCTAssertEqual(error as? ModelError, .incompatibleLayers(layer: "gru (GRU)", inputs: ["dense (Dense) (None, 4)"],
                                                                    reason: "expects input [time, features], got [4]"))
            XCTAssertEqual("\(error)", "gru (GRU) cannot take dense (Dense) (None, 4): expects input [time, features], got [4]")
        }
        let other = Input(shape: [2])
        XCTAssertThrowsError(try Model(inputs: input, outputs: Concatenate()([flat, other]))) { error in
            XCTAssertEqual(error as? ModelError, .missingInput(input: "input_layer_1 (InputLayer)", shape: [2],
                                                                   neededBy: "concatenate (Concatenate)"))
        }
        XCTAssertThrowsError(try Model(inputs: [input, other], outputs: [flat])) { error in
            XCTAssertEqual(error as? ModelError, .disconnectedInput(input: "input 1", shape: [2]))
        }
        let shorter = Input(shape: [5, 2])
        XCTAssertThrowsError(try Model(inputs: [input, shorter], outputs: [Concatenate()([input, shorter])])) { error in
            guard case .incompatibleLayers(let layer, let inputs, _)? = error as? ModelError else { return XCTFail("\(error)") }
            XCTAssertEqual(layer, "concatenate (Concatenate)")
            XCTAssertEqual(inputs, ["input_layer (InputLayer) (None, 6, 3)", "input_layer_1 (InputLayer) (None, 5, 2)"])
        }
        XCTAssertThrowsError(try Model(inputs: flat, outputs: Dense(outputSize: 1)(flat))) { error in
            XCTAssertEqual(error as? ModelError, .notAnInput(tensor: "the output of dense (Dense)"))
        }
        let (_, h, _) = LSTM(hiddenSize: 5)(input)
        XCTAssertThrowsError(try Model(inputs: input, outputs: GRU(hiddenSize: 4)(input, initialState: [h]))) { error in
            XCTAssertEqual(error as? ModelError, .incompatibleLayers(
                layer: "gru (GRU)", inputs: ["input_layer (InputLayer) (None, 6, 3)", "lstm (LSTM) (None, 5)"],
                reason: "expects initial state tensors [4], got [5]"))
        }
        XCTAssertThrowsError(try Model(inputs: input, outputs: Dense(outputSize: 0)(input))) { error in
            XCTAssertEqual(error as? ModelError, .invalidSetting(layer: "dense (Dense)", setting: "outputSize", value: "0",
                                                                requirement: "must be positive"))
        }
    }
}
