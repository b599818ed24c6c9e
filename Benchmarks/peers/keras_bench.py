#!/usr/bin/env python3
"""Keras 3 peer benchmark for Unroll (comparison only; not a dependency).

The backend is chosen by the KERAS_BACKEND environment variable: "tensorflow"
(the default here) or "jax". Times one training step (forward,
backpropagation through time, Adam update) of a recurrent layer followed by a
Dense head on the last hidden state, MSE loss, random data from a fixed seed.
CPU only; 2 intra-op threads and 1 inter-op thread by default.

    KERAS_BACKEND=jax python keras_bench.py [--workload NAME] [--steps N] [--warmup N] [--json]

With --json, prints one line per workload:
    {"framework": "keras-tensorflow" | "keras-jax", "workload": NAME, "msPerStep": X}

Modes (--mode):
  train_on_batch  model.compile(...) + model.train_on_batch(x, y): the plain
                  Keras path; Keras compiles the train step itself (an XLA jit
                  on JAX; a tf.function on TensorFlow, XLA only if --jit true).
  custom          a hand-written compiled train step: on JAX,
                  model.stateless_call + jax.value_and_grad +
                  optimizer.stateless_apply under jax.jit with donated
                  buffers; on TensorFlow, GradientTape +
                  optimizer.apply_gradients under tf.function.
  best            run both and report the faster (default).

custom-mgu is a minimal gated unit written as a Keras user writes a cell: a
custom cell layer (build + call(inputs, states)) inside keras.layers.RNN:
    f = sigmoid(x W_f + h U_f + b_f)    c = tanh(x W_h + (f * h) U_h + b_h)
    h' = (1 - f) * h + f * c
"""
import argparse
import json
import os
import statistics
import sys
import time

# name: (cell, hidden, batch, time, features, outputs, default steps, default warm-up)
WORKLOADS = {
    "seed-lstm": ("lstm", 400, 128, 32, 1, 8, 10, 3),
    "small-rnn": ("rnn", 16, 13, 3, 1, 1, 300, 30),
    "gru-long": ("gru", 128, 16, 1000, 8, 1, 5, 2),
    "char-lstm": ("lstm", 256, 32, 64, 64, 64, 20, 3),
    "custom-mgu": ("mgu", 128, 32, 100, 1, 1, 10, 2),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", default="all",
                   help="one of %s, a comma-separated list, or 'all' (default)" % ", ".join(WORKLOADS))
    p.add_argument("--steps", type=int, default=None, help="timed steps per repeat (default: per workload)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed warm-up steps, after the first (compiling) call (default: per workload)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (default 3)")
    p.add_argument("--stat", choices=["median", "min"], default="median",
                   help="what is reported of the repeats (default median; min is steadier on a busy machine)")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    p.add_argument("--mode", choices=["train_on_batch", "custom", "best"], default="best")
    p.add_argument("--jit", choices=["auto", "true", "false"], default="auto",
                   help="jit_compile for the train step (auto: Keras' choice, i.e. XLA on JAX, "
                        "no XLA for TensorFlow on CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    args = p.parse_args(argv)
    names = list(WORKLOADS) if args.workload == "all" else args.workload.split(",")
    for n in names:
        if n not in WORKLOADS:
            p.error("unknown workload %r (known: %s)" % (n, ", ".join(WORKLOADS)))
    args.names = names
    return args


def configure_threads(backend, threads):
    """Must run before the backend is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            # One thread: no Eigen thread pool at all. More: Eigen's pool, whose
            # size XLA takes from the CPUs this process may run on.
            value = "false" if threads <= 1 else "true"
            flags = (flags + " --xla_cpu_multi_thread_eigen=%s" % value).strip()
        os.environ["XLA_FLAGS"] = flags
        # XLA has no flag for the pool's size, so on a machine with more cores
        # than --threads, keep the process on the first `threads` CPUs.
        if hasattr(os, "sched_getaffinity"):
            cpus = sorted(os.sched_getaffinity(0))
            if len(cpus) > threads:
                os.sched_setaffinity(0, cpus[:threads])
    if backend == "tensorflow":
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(threads))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")


def main(argv=None):
    args = parse_args(argv)
    backend = os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if backend not in ("tensorflow", "jax"):
        sys.exit("keras_bench.py: KERAS_BACKEND must be tensorflow or jax, not %r" % backend)
    configure_threads(backend, args.threads)

    import numpy as np
    if backend == "tensorflow":
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    framework = "keras-" + backend

    class MGUCell(keras.layers.Layer):
        """The minimal gated unit, one step; keras.layers.RNN runs it over time."""

        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = units
            self.output_size = units

        def build(self, input_shape):
            n = self.units
            self.kernel = self.add_weight(shape=(input_shape[-1], 2 * n), initializer="glorot_uniform", name="kernel")
            self.forget_recurrent = self.add_weight(shape=(n, n), initializer="orthogonal", name="forget_recurrent")
            self.candidate_recurrent = self.add_weight(shape=(n, n), initializer="orthogonal",
                                                       name="candidate_recurrent")
            self.bias = self.add_weight(shape=(2 * n,), initializer="zeros", name="bias")

        def call(self, inputs, states):
            ops = keras.ops
            n = self.units
            h = states[0] if isinstance(states, (list, tuple)) else states
            p = ops.matmul(inputs, self.kernel) + self.bias
            f = ops.sigmoid(p[:, :n] + ops.matmul(h, self.forget_recurrent))
            candidate = ops.tanh(p[:, n:] + ops.matmul(f * h, self.candidate_recurrent))
            h = (1 - f) * h + f * candidate
            return h, [h]
    jit = {"auto": "auto", "true": True, "false": False}[args.jit]

    def build(name):
        cell, hidden, batch, steps_t, features, outputs = WORKLOADS[name][:6]
        keras.utils.set_random_seed(args.seed)
        if cell == "mgu":
            recurrent = keras.layers.RNN(MGUCell(hidden))  # return_sequences=False: the last hidden state
        else:
            layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "rnn": keras.layers.SimpleRNN}[cell]
            recurrent = layer(hidden)  # return_sequences=False: the last hidden state
        model = keras.Sequential([
            keras.Input(shape=(steps_t, features), batch_size=batch),
            recurrent,
            keras.layers.Dense(outputs),
        ])
        rng = np.random.default_rng(args.seed)
        x = rng.standard_normal((batch, steps_t, features), dtype=np.float32)
        y = rng.standard_normal((batch, outputs), dtype=np.float32)
        return model, x, y

    def step_train_on_batch(name):
        model, x, y = build(name)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=jit)
        # Hand over backend tensors, so that no step pays for converting numpy arrays.
        if backend == "tensorflow":
            x, y = tf.constant(x), tf.constant(y)
        else:
            import jax
            x, y = jax.numpy.asarray(x), jax.numpy.asarray(y)

        def step():
            return model.train_on_batch(x, y)

        def sync(_):
            pass  # train_on_batch returns the loss as a Python float: already synchronous

        return step, sync

    def step_custom_jax(name):
        import jax
        model, x, y = build(name)
        opt = keras.optimizers.Adam(1e-3)
        opt.build(model.trainable_variables)
        loss_obj = keras.losses.MeanSquaredError()
        state = [
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [v.value for v in opt.variables],
        ]
        x, y = jax.numpy.asarray(x), jax.numpy.asarray(y)

        def loss_fn(tv, ntv, x, y):
            pred, ntv = model.stateless_call(tv, ntv, x, training=True)
            return loss_obj(y, pred), ntv

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

        def train_step(tv, ntv, ov, x, y):
            (loss, ntv), grads = grad_fn(tv, ntv, x, y)
            tv, ov = opt.stateless_apply(ov, grads, tv)
            return loss, tv, ntv, ov

        train_step = jax.jit(train_step, donate_argnums=(0, 1, 2))

        def step():
            loss, state[0], state[1], state[2] = train_step(state[0], state[1], state[2], x, y)
            return loss

        def sync(loss):
            loss.block_until_ready()

        return step, sync

    def step_custom_tf(name):
        model, x, y = build(name)
        opt = keras.optimizers.Adam(1e-3)
        loss_obj = keras.losses.MeanSquaredError()
        x, y = tf.constant(x), tf.constant(y)
        tf_jit = None if jit == "auto" else jit

        @tf.function(jit_compile=tf_jit)
        def train_step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_obj(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        def step():
            return train_step(x, y)

        def sync(loss):
            loss.numpy()

        return step, sync

    def measure(name, mode):
        d_steps, d_warm = WORKLOADS[name][6:]
        steps = args.steps if args.steps is not None else d_steps
        warmup = args.warmup if args.warmup is not None else d_warm
        if mode == "train_on_batch":
            step, sync = step_train_on_batch(name)
        elif backend == "jax":
            step, sync = step_custom_jax(name)
        else:
            step, sync = step_custom_tf(name)
        sync(step())  # the first call traces and compiles
        for _ in range(warmup):
            out = step()
        if warmup:
            sync(out)
        per_repeat = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for _ in range(steps):
                out = step()
            sync(out)
            per_repeat.append((time.perf_counter() - t0) * 1000.0 / steps)
        return (min(per_repeat) if args.stat == "min" else statistics.median(per_repeat)), per_repeat, steps, warmup

    modes = ["train_on_batch", "custom"] if args.mode == "best" else [args.mode]
    for name in args.names:
        results = {m: measure(name, m) for m in modes}
        mode = min(results, key=lambda m: results[m][0])
        ms = results[mode][0]
        if args.json:
            print(json.dumps({"framework": framework, "workload": name, "msPerStep": round(ms, 4)}), flush=True)
        else:
            for m, (med, reps, steps, warmup) in results.items():
                print("%s %-10s %10.3f ms/step  [%s%s] (repeats: %s; steps %d, warm-up %d, keras %s, jit %s)"
                      % (framework, name, med, m, "*" if m == mode and len(results) > 1 else "",
                         ", ".join("%.3f" % v for v in reps), steps, warmup, keras.__version__, args.jit),
                      flush=True)


if __name__ == "__main__":
    sys.exit(main())
