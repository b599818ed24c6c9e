"""Writes the Keras files Unroll's Keras tests read, and Keras' own predictions for them.

Run outside the Swift build, in a virtual environment with Keras 3 and h5py:

    python Tests/Fixtures/keras/make_fixtures.py            # every model below
    python Tests/Fixtures/keras/make_fixtures.py --check Tests/Fixtures/keras/swift_trained.keras
        # opens a .keras file written by Unroll and adds Keras' predictions on its recorded input, parameter
        # count, optimizer and warnings to the .json beside it

swift_trained.keras and its .json are written by Unroll itself:
    UNROLL_WRITE_KERAS_FIXTURES=1 swift test --filter KerasRoundTripTests

Each model NAME gets NAME.keras and NAME.json: {"keras": version, "parameterCount", "input", "output"}.
Weights are drawn from a seeded normal (biases included, so a dropped bias shows), inputs are fixed.
"""
import io
import json
import os
import sys
import warnings
import zipfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def models():
    """Returns (name, model, input) for every fixture."""
    rng = np.random.default_rng(7)
    seq = rng.normal(size=(2, 5, 3)).astype("float32")
    yield "lstm_gru_dense", keras.Sequential([
        keras.Input((5, 3)),
        layers.LSTM(4, return_sequences=True),
        layers.Dropout(0.25),
        layers.GRU(3),
        layers.Dense(2, activation="tanh"),
    ]), seq, keras.optimizers.Adam(learning_rate=0.002, beta_1=0.8, beta_2=0.99, epsilon=1e-6)
    yield "bidirectional_concat", keras.Sequential([
        keras.Input((5, 3)),
        layers.Bidirectional(layers.LSTM(4), merge_mode="concat"),
        layers.Dense(1),
    ]), seq, keras.optimizers.SGD(learning_rate=0.05, momentum=0.9)
    yield "bidirectional_sum", keras.Sequential([
        keras.Input((5, 3)),
        layers.Bidirectional(layers.LSTM(4, return_sequences=True), merge_mode="sum"),
        layers.Dense(2, activation="sigmoid"),
    ]), seq, keras.optimizers.RMSprop(learning_rate=0.003, rho=0.8)
    yield "bidirectional_mul", keras.Sequential([
        keras.Input((5, 3)),
        layers.Bidirectional(layers.GRU(3), merge_mode="mul"),
        layers.Dense(1),
    ]), seq, None
    yield "bidirectional_ave", keras.Sequential([
        keras.Input((5, 3)),
        layers.Bidirectional(layers.SimpleRNN(3, return_sequences=True), merge_mode="ave"),
        layers.Dense(1, activation="relu"),
    ]), seq, None
    yield "simple_rnn_relu", keras.Sequential([
        keras.Input((5, 3)),
        layers.SimpleRNN(4, activation="relu"),
        layers.Dense(1),
    ]), seq, keras.optimizers.Adam()
    yield "gru_reset_before", keras.Sequential([
        keras.Input((5, 3)),
        layers.GRU(4, reset_after=False, return_sequences=True),
        layers.GRU(2, go_backwards=True),
        layers.Dense(2),
    ]), seq, None
    tokens = rng.integers(0, 10, size=(3, 6)).astype("int32")
    yield "embedding_lstm_softmax", keras.Sequential([
        keras.Input((6,), dtype="int32"),
        layers.Embedding(10, 4),
        layers.LSTM(5),
        layers.Dense(3, activation="softmax"),
    ]), tokens, keras.optimizers.Adam()
    course_input = np.sin(np.linspace(0, 6, 64)).reshape(2, 32, 1).astype("float32")
    yield "course_lstm400", keras.Sequential([
        keras.Input((32, 1)),
        layers.LSTM(400),
        layers.Dense(8),
    ]), course_input, keras.optimizers.Adam(learning_rate=0.001)


def write_functional():
    """A functional model with two inputs, a shared Dense layer (called twice), Add and Concatenate."""
    rng = np.random.default_rng(11)
    series, extra = keras.Input((5, 3)), keras.Input((4,))
    shared = layers.Dense(4, activation="tanh")
    summed = layers.Add()([shared(layers.LSTM(4)(series)), shared(extra)])
    output = layers.Dense(2)(layers.Concatenate()([summed, extra]))
    model = keras.Model([series, extra], output)
    randomize(model, 99)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.004), loss="mse")
    inputs = [rng.normal(size=(3, 5, 3)).astype("float32"), rng.normal(size=(3, 4)).astype("float32")]
    predicted = model.predict(inputs, verbose=0)
    model.save(os.path.join(HERE, "functional_shared.keras"))
    write_json(os.path.join(HERE, "functional_shared.json"), {
        "keras": keras.__version__, "parameterCount": model.count_params(),
        "input": [array.tolist() for array in inputs], "output": predicted.tolist()})


def randomize(model, seed):
    rng = np.random.default_rng(seed)
    scale = 0.05 if model.count_params() > 100_000 else 0.5
    model.set_weights([(rng.normal(size=w.shape) * scale).astype("float32")
                       if w.dtype.kind == "f" else w for w in model.get_weights()])


def write_json(path, value):
    with open(path, "w") as handle:
        json.dump(value, handle, separators=(",", ":"))
        handle.write("\n")


def copy_latest(source, destination):
    """Copies an HDF5 weights file with libver="latest" (superblock 3, v2 object headers, link messages),
    storing one-dimensional datasets compactly, so the reader's other paths are exercised."""
    with h5py.File(source, "r") as old, h5py.File(destination, "w", libver="latest") as new:
        def visit(name, item):
            if isinstance(item, h5py.Group):
                group = new.require_group(name)
                for key, value in item.attrs.items():
                    group.attrs[key] = value
                return
            data = item[()]
            parent = new.require_group(os.path.dirname(name) or "/")
            if data.ndim == 1:
                dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
                dcpl.set_layout(h5py.h5d.COMPACT)
                space = h5py.h5s.create_simple(data.shape)
                dataset = h5py.h5d.create(parent.id, os.path.basename(name).encode(),
                                          h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
                dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(data, dtype="<f4"))
            else:
                parent.create_dataset(os.path.basename(name), data=data)
        old.visititems(visit)


class Unseekable(io.RawIOBase):
    """A write-only stream without seek, so zipfile writes data descriptors after each entry."""

    def __init__(self, path):
        self.handle = open(path, "wb")

    def writable(self):
        return True

    def write(self, data):
        return self.handle.write(data)

    def close(self):
        self.handle.close()
        super().close()


def write_zip_variants():
    """Zip archives as other tools write them: data descriptors with zip64 local sizes, and deflate."""
    stream = Unseekable(os.path.join(HERE, "descriptors.zip"))
    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_STORED) as archive:
        with archive.open("a.txt", "w", force_zip64=True) as entry:
            entry.write(b"stored with a data descriptor\n")
        archive.writestr("b/c.json", b'{"b": [1, 2]}')
    stream.close()
    with zipfile.ZipFile(os.path.join(HERE, "deflated.zip"), "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.txt", b"compressed " * 20)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        path = sys.argv[2]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = keras.saving.load_model(path)
        for warning in caught:
            print("warning:", warning.message)
        stem = os.path.splitext(path)[0]
        with open(stem + ".json") as handle:
            recorded = json.load(handle)
        output = model.predict(np.asarray(recorded["input"], dtype="float32"), verbose=0)
        recorded["kerasOutput"] = output.tolist()
        recorded["kerasParameterCount"] = model.count_params()
        recorded["kerasWarnings"] = [str(warning.message) for warning in caught]
        if model.optimizer is not None:
            recorded["kerasOptimizer"] = {"class": type(model.optimizer).__name__,
                                          "learningRate": float(model.optimizer.learning_rate),
                                          "iterations": int(model.optimizer.iterations),
                                          "loss": str(model.loss)}
        write_json(stem + ".json", recorded)
        print(f"{path}: Keras {keras.__version__} opened it; {model.count_params()} parameters")
        return
    write_zip_variants()
    write_functional()
    for index, (name, model, inputs, optimizer) in enumerate(models()):
        randomize(model, index)
        if optimizer is not None:
            model.compile(optimizer=optimizer, loss="mse")
        output = model.predict(inputs, verbose=0)
        model.save(os.path.join(HERE, name + ".keras"))
        write_json(os.path.join(HERE, name + ".json"), {
            "keras": keras.__version__, "parameterCount": model.count_params(),
            "input": inputs.tolist(), "output": output.tolist()})
        if name == "lstm_gru_dense":
            weights = os.path.join(HERE, name + ".weights.h5")
            model.save_weights(weights)
            copy_latest(weights, os.path.join(HERE, name + ".latest.weights.h5"))
        print(name, model.count_params())


if __name__ == "__main__":
    main()
