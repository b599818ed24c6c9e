#!/usr/bin/env python3
"""Keras reference for Unroll's default job: monthly airline passengers.

Data: Tests/Fixtures/data/airline_passengers.csv (144 monthly totals, 1949-1960, in
thousands of passengers). Model input: the 12 past log-ratios
r_t = log(y_t / y_{t-1}); target: the next log-ratio. Windows are built in
time order; the first 2/3 of them train, the rest test (no shuffling across
that split). Inputs and targets are standardised with the training windows'
mean and standard deviation of r. Model: LSTM(32) -> Dense(1), Adam(1e-3), MSE,
--epochs (200) epochs of minibatches of --batch-size (8), seed fixed.

Forecast (one step ahead, from the true previous month):
    y_hat_t = y_{t-1} * exp(r_hat_t)
Baseline ("naive", last value): y_hat_t = y_{t-1}.
Both RMSEs are in thousands of passengers over the test months.

    KERAS_BACKEND=tensorflow python airline_keras.py [--seeds 0 1 2] [--epochs 200] [--json]
"""
import argparse
import json
import math
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# The copy in the repository (the one Unroll's tests and default job use).
DEFAULT_CSV = os.path.normpath(os.path.join(HERE, "..", "..", "Tests", "Fixtures", "data", "airline_passengers.csv"))


def load(path):
    with open(path) as f:
        rows = [line.strip().split(",") for line in f if line.strip()]
    if not rows[0][-1].replace(".", "", 1).isdigit():
        rows = rows[1:]  # header
    return [float(r[-1]) for r in rows]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", default=DEFAULT_CSV)
    p.add_argument("--window", type=int, default=12)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--no-standardize", action="store_true", help="feed the raw log-ratios")
    p.add_argument("--json", action="store_true", help="one JSON object per seed, then a summary")
    args = p.parse_args(argv)

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import numpy as np
    import keras

    y = np.asarray(load(args.csv), dtype=np.float64)
    r = np.log(y[1:] / y[:-1])  # r[j] = log(y[j+1] / y[j])
    w = args.window
    n = len(r) - w  # windows: r[i:i+w] -> r[i+w] = log(y[i+w+1] / y[i+w])
    X = np.stack([r[i:i + w] for i in range(n)])
    T = np.array([r[i + w] for i in range(n)])
    n_train = (2 * n) // 3
    mu, sd = r[:n_train + w].mean(), r[:n_train + w].std()  # only months the training windows see
    if args.no_standardize:
        mu, sd = 0.0, 1.0

    def scale(a):
        return ((a - mu) / sd).astype(np.float32)

    x_train, t_train = scale(X[:n_train])[..., None], scale(T[:n_train])[:, None]
    x_test = scale(X[n_train:])[..., None]
    prev = y[n_train + w:n_train + w + (n - n_train)]  # y_{t-1} for each test target
    actual = y[n_train + w + 1:]  # y_t
    assert len(prev) == len(actual) == n - n_train

    naive_rmse = float(np.sqrt(np.mean((prev - actual) ** 2)))
    results = []
    for seed in args.seeds:
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([
            keras.Input(shape=(w, 1)),
            keras.layers.LSTM(args.hidden),
            keras.layers.Dense(1),
        ])
        model.compile(optimizer=keras.optimizers.Adam(args.lr), loss="mse")
        model.fit(x_train, t_train, epochs=args.epochs, batch_size=args.batch_size, shuffle=True, verbose=0)
        r_hat = keras.ops.convert_to_numpy(model(x_test, training=False))[:, 0].astype(np.float64) * sd + mu
        y_hat = prev * np.exp(r_hat)
        rmse = float(np.sqrt(np.mean((y_hat - actual) ** 2)))
        results.append(rmse)
        if args.json:
            print(json.dumps({"seed": seed, "testRMSE": round(rmse, 3), "naiveRMSE": round(naive_rmse, 3)}), flush=True)
        else:
            print("seed %d: LSTM test RMSE %.2f  (naive last-value %.2f)" % (seed, rmse, naive_rmse), flush=True)

    summary = {
        "backend": keras.backend.backend(), "keras": keras.__version__,
        "windows": n, "train": n_train, "test": n - n_train, "epochs": args.epochs,
        "seeds": args.seeds, "testRMSE_median": statistics.median(results),
        "testRMSE_min": min(results), "testRMSE_max": max(results), "naiveRMSE": naive_rmse,
    }
    if args.json:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items()}))
    else:
        print("%s backend, keras %s: %d windows (%d train, %d test), %d epochs; "
              "LSTM test RMSE median %.2f [%.2f .. %.2f] over %d seed(s); naive %.2f"
              % (summary["backend"], summary["keras"], n, n_train, n - n_train, args.epochs,
                 summary["testRMSE_median"], min(results), max(results), len(results), naive_rmse))


if __name__ == "__main__":
    sys.exit(main())
