import Foundation
import Graph
import Layers
import Serialization

// The model's files: weights files, model directories, PyTorch and Keras weights. The formats live in
// Serialization, which works on a list of layers; this file keeps the public API on `Sequential`.

extension Sequential {
    /// Writes the weights to a safetensors file (atomically), named as in ``namedParameters``.
    public func saveWeights(to url: URL, metadata: [String: String] = [:]) throws {
        _ = try layerShapes()
        var tensors: [String: Tensor] = [:]
        for (name, parameter) in namedParameters { tensors[name] = parameter.value }
        try SafeTensors.write(tensors, metadata: metadata, to: url)
    }

    /// Reads weights written by ``saveWeights(to:metadata:)``; every name must be present with its shape.
    public func loadWeights(from url: URL) throws {
        _ = try layerShapes()
        let (tensors, _) = try SafeTensors.read(from: url)
        try setWeights(named: tensors, source: url.path)
    }

    /// Saves the model, architecture and weights, to a directory (created if needed) that
    /// ``load(from:)`` reads back into a model with bit-identical predictions.
    ///
    /// The directory is replaced as a whole: a complete new one is written beside it and flushed to disk, then
    /// swapped in (`renameat2(RENAME_EXCHANGE)`, else two renames whose middle state ``load(from:)`` resolves), so
    /// after a crash at any moment the directory holds exactly the old model or exactly the new one. An existing
    /// directory holding anything but a model's files is refused. It holds:
    /// - `manifest.json`: the size and CRC-32 of every other file, checked by ``load(from:)``.
    /// - `model.safetensors`: every parameter named as in ``namedParameters`` (`lstm/kernel`), `F32`.
    /// - `model.json`: the architecture, for example
    ///   ```json
    ///   { "format": "unroll.sequential", "formatVersion": 1, "name": "sequential", "inputShape": [5, 4],
    ///     "layers": [
    ///       { "type": "rnn", "cell": { "kind": "lstm", "hiddenSize": 6, "unitForgetBias": true },
    ///         "returnSequences": true, "goBackwards": false, "isStateful": false },
    ///       { "type": "bidirectional", "mergeMode": "concatenate", "layer": { "cell": { "kind": "gru",
    ///         "hiddenSize": 3, "resetAfter": true }, "returnSequences": false, "goBackwards": false, "isStateful": false } },
    ///       { "type": "dropout", "rate": 0.2 },
    ///       { "type": "dense", "outputSize": 1, "activation": "linear", "usesBias": true } ],
    ///     "loss": "mean_squared_error", "weightsCRC32": "1c291ca3" }
    ///   ```
    ///   Layer `type`s: `dense` (`outputSize`, `activation`, `usesBias`), `dropout` (`rate`), `embedding`
    ///   (`vocabularySize`, `outputSize`), `rnn` (`cell`, `returnSequences`, `goBackwards`, `isStateful`),
    ///   `bidirectional` (`mergeMode`: `concatenate`, `sum`, `multiply` or `average`; `layer`: an `rnn`'s fields) and
    ///   `echo_state_network` (`reservoirSize`, `outputSize`, `spectralRadius`, `leakRate`, `inputScaling`,
    ///   `connectivity`, `returnSequences`; the reservoir itself is in the weights), and the wiring layers
    ///   `concatenate` (`axis`), `add`, `multiply`, `repeat_vector` (`count`), `time_distributed` (`layer`: a
    ///   layer object) and `masking` (`maskValue`). Optional fields, absent when at their default: an embedding's
    ///   `maskZero` (false), a recurrent layer's `dropout` and `recurrentDropout` (0).
    ///   Cell `kind`s: `lstm` (`hiddenSize`, `unitForgetBias`), `gru` (`hiddenSize`, `resetAfter`), `simple_rnn`
    ///   (`hiddenSize`, `activation`), `peephole_lstm` (`hiddenSize`), `indrnn` (`hiddenSize`, `recurrentBound`,
    ///   `null` when unbounded) and `stacked` (`cells`: cells of one kind, lowest first). `loss` is the compiled
    ///   loss's name, for the reader only: a loaded model is not compiled. `weightsCRC32` is the CRC-32 of the
    ///   whole weights file, which ties the two files together.
    ///
    /// Neither optimizer state nor a stateful layer's carried state is saved.
    ///
    /// - Throws: ``ModelArchiveError/unsupportedLayer(typeName:)`` for a layer the format cannot describe (a custom
    ///   layer or cell), ``TrainingError`` when the layers do not fit together, ``AtomicWriteError`` when a file
    ///   cannot be written.
    public func save(to directory: URL) throws {
        try save(to: directory, additionalFiles: [])
    }

    /// ``save(to:)`` with a tool's files saved in the same atomic step (the command line's `preprocessing.json`),
    /// the way the directory is swapped in, and a hook run once the new directory is complete, before the swap.
    package func save(to directory: URL, additionalFiles: [(name: String, data: Data)] = [],
                      swap: DirectorySwap = .exchangeIfAvailable, beforeSwap: (URL) throws -> Void = { _ in }) throws {
        _ = try layerShapes()
        guard let inputShape else { throw TrainingError.missingInputShape(layer: layers.first?.typeName ?? "model") }
        var tensors: [String: Tensor] = [:]
        for (name, parameter) in namedParameters { tensors[name] = parameter.value }
        try ModelDirectory.write(name: name, inputShape: inputShape, layers: layers, weights: tensors, loss: loss?.name,
                                 additionalFiles: additionalFiles, to: directory, swap: swap, beforeSwap: beforeSwap)
    }

    /// Loads a model saved by ``save(to:)``: rebuilds its layers from `model.json` and sets their weights
    /// from `model.safetensors`. The model is not compiled.
    ///
    /// Every number in `model.json` is range-checked, and the parameter count it implies is checked against
    /// the weights file, before any layer is created; hostile files make it throw, never crash.
    ///
    /// - Throws: ``ModelArchiveError`` (a missing file, an invalid, newer or unknown description, weights from
    ///   another save), ``SafeTensorsError`` (a truncated or corrupted weights file) or ``WeightError`` (a tensor
    ///   missing or of the wrong shape, named).
    public static func load(from directory: URL) throws -> Sequential {
        try load(from: directory, additionalFiles: []).model
    }

    /// ``load(from:)`` that also returns the tool files named in `additionalFiles`, read from the same save and
    /// checked against its manifest.
    package static func load(from directory: URL, additionalFiles: [String]) throws -> (model: Sequential, files: [String: Data]) {
        let (contents, files) = try ModelDirectory.read(from: directory, additionalFiles: additionalFiles)
        let model = Sequential(contents.layers, inputShape: contents.inputShape, name: contents.name)
        do {
            _ = try model.layerShapes()
        } catch let error as TrainingError {
            throw ModelArchiveError.invalidDescription(file: contents.descriptionPath, reason: error.description)
        }
        try model.setWeights(named: contents.weights, source: contents.weightsPath)
        return (model, files)
    }

    /// Returns the weights as a PyTorch state dict: `"<layer name>.<PyTorch name>"`, PyTorch's layouts.
    ///
    /// Layer names are ``layerNames`` (`lstm`, `lstm_1`, `bidirectional`, `dense`). Per layer:
    /// - `Dense` (a `torch.nn.Linear`): `dense.weight [outputSize, inputSize]`, `dense.bias [outputSize]`.
    /// - `Embedding` (a `torch.nn.Embedding`): `embedding.weight [vocabularySize, outputSize]`.
    /// - `LSTM`, `GRU`, `SimpleRNN` (`torch.nn.LSTM`, `GRU`, `RNN`): `lstm.weight_ih_l0 [gates·hidden, input]`,
    ///   `lstm.weight_hh_l0 [gates·hidden, hidden]`, `lstm.bias_ih_l0`, `lstm.bias_hh_l0 [gates·hidden]`, gates in
    ///   PyTorch's order (LSTM i, f, g, o; GRU r, z, n). Unroll keeps one fused bias, exported as `bias_ih` with
    ///   `bias_hh` zero; on import the two are added. A GRU with `resetAfter: false` has no PyTorch twin and uses
    ///   one `bias_l0`.
    /// - `PeepholeLSTM`: the LSTM names plus `peephole_i_l0`, `peephole_f_l0`, `peephole_o_l0 [hidden]`.
    /// - `IndRNN`: `weight_ih_l0 [hidden, input]`, `recurrent_weight_l0 [hidden]`, `bias_l0 [hidden]`.
    /// - A stack of cells: cell `k` as layer `k` of a multi-layer PyTorch RNN (`_l0`, `_l1`, ...).
    /// - `Bidirectional`: the forward layer's names (`bidirectional.weight_ih_l0`), the backward layer's with
    ///   `_reverse` (`bidirectional.weight_ih_l0_reverse`).
    /// - `Dropout`: nothing. `EchoStateNetwork` has no PyTorch twin and no PyTorch names.
    ///
    /// - Throws: ``ModelArchiveError/unsupportedLayer(typeName:)`` for a layer with parameters but no PyTorch
    ///   names (a custom layer or cell, a bidirectional stack, an `EchoStateNetwork`), ``TrainingError`` when the
    ///   layers cannot be built.
    public func pyTorchStateDict() throws -> [String: Tensor] {
        try WeightNames.pyTorchTensors(try weightIdentities())
    }

    /// Sets every parameter from a PyTorch state dict named as in ``pyTorchStateDict()``, converting layouts.
    ///
    /// All names and shapes are checked before any parameter changes, so a failed import leaves the model as it was.
    ///
    /// - Parameter source: names the dictionary in errors.
    /// - Throws: ``WeightError`` naming a missing tensor or one of the wrong shape (PyTorch names and shapes),
    ///   ``ModelArchiveError/unexpectedTensors(file:names:)`` for tensors the model has no place for,
    ///   ``ModelArchiveError/unsupportedLayer(typeName:)``.
    public func setPyTorchWeights(_ stateDict: [String: Tensor], source: String = "state dict") throws {
        try WeightNames.setPyTorch(try weightIdentities(), from: stateDict, source: source)
    }

    /// Reads a safetensors file holding a PyTorch state dict (`safetensors.torch.save_file(model.state_dict(), ...)`
    /// of a module whose submodules carry the Unroll layer names) and sets every parameter from it; see
    /// ``pyTorchStateDict()`` for the names and ``setPyTorchWeights(_:source:)`` for the checks.
    ///
    /// - Throws: ``SafeTensorsError`` for an unreadable or corrupted file, else as ``setPyTorchWeights(_:source:)``.
    public func loadPyTorchWeights(from url: URL) throws {
        let (tensors, _) = try SafeTensors.read(from: url)
        try setPyTorchWeights(tensors, source: url.path)
    }

    /// Returns the weights named as Keras names them, `"<layer name>/<Keras weight name>"`, in Keras' layouts
    /// (which are Unroll's own).
    ///
    /// Layer names are ``layerNames``. Per layer: `dense/kernel [input, output]`, `dense/bias`;
    /// `embedding/embeddings`; `lstm/kernel [input, gates·hidden]`, `lstm/recurrent_kernel [hidden, gates·hidden]`,
    /// `lstm/bias` (gates in Keras' order: LSTM i, f, c, o; GRU z, r, h; a `resetAfter` GRU's bias is
    /// `[2, 3·hidden]`); `peephole_lstm/input_gate_peephole_weights` and its forget and output twins;
    /// `indrnn/recurrent_kernel [hidden]`. A bidirectional layer nests each direction under the wrapped layer's
    /// name, as Keras does: `bidirectional/forward_lstm/kernel`, `bidirectional/backward_lstm/kernel`. A stack of
    /// cells nests cell `k` as `stacked_lstm/cell_0/kernel`, `stacked_lstm/cell_1/kernel`. Any other layer uses its
    /// parameters' own names, a repeated name getting `_1`, `_2`: `echo_state_network/kernel`, `recurrent_kernel`,
    /// `bias`, `readout_kernel`, `readout_bias`; a custom layer's `custom/weight`.
    ///
    /// - Throws: ``TrainingError`` when the layers cannot be built.
    public func kerasWeights() throws -> [String: Tensor] {
        WeightNames.kerasTensors(try weightIdentities())
    }

    /// Sets every parameter from tensors named as in ``kerasWeights()``, checking all names and shapes before
    /// any parameter changes.
    ///
    /// - Parameter source: names the dictionary in errors.
    /// - Throws: ``WeightError`` naming a missing tensor or one of the wrong shape,
    ///   ``ModelArchiveError/unexpectedTensors(file:names:)`` for tensors the model has no place for.
    public func setKerasWeights(_ tensors: [String: Tensor], source: String = "weights") throws {
        try WeightNames.setKeras(try weightIdentities(), from: tensors, source: source)
    }

    /// Reads a safetensors file of Keras-named weights (see ``kerasWeights()``) and sets every parameter from it.
    ///
    /// - Throws: ``SafeTensorsError`` for an unreadable or corrupted file, else as ``setKerasWeights(_:source:)``.
    public func loadKerasWeights(from url: URL) throws {
        let (tensors, _) = try SafeTensors.read(from: url)
        try setKerasWeights(tensors, source: url.path)
    }

    /// Every parameter's identity, the layers built first (a parameter's shape is part of every format's check).
    private func weightIdentities() throws -> [WeightIdentity] {
        _ = try layerShapes()
        return WeightNames.identities(of: layers, names: layerNames)
    }
}
