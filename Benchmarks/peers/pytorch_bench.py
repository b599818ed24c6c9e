#!/usr/bin/env python3
"""PyTorch peer benchmark for Unroll (comparison only; not a dependency).

Times one training step (forward, backpropagation through time, Adam update)
of a recurrent layer followed by a Dense/Linear head on the last hidden state,
MSE loss, random data from a fixed seed. CPU only, 2 intra-op threads and
1 inter-op thread by default.

custom-mgu is a minimal gated unit written by hand, as a PyTorch user writes a
cell: a Python loop over time of ordinary tensor ops (the input projection of
all steps is one product before the loop, as in Unroll's cell):
    f = sigmoid(x W_f + h U_f + b_f)    c = tanh(x W_h + (f * h) U_h + b_h)
    h' = (1 - f) * h + f * c

    python pytorch_bench.py [--workload NAME] [--steps N] [--warmup N] [--json]

With --json, prints one line per workload:
    {"framework": "pytorch", "workload": NAME, "msPerStep": X}
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
    p.add_argument("--warmup", type=int, default=None, help="untimed warm-up steps (default: per workload)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (default 3)")
    p.add_argument("--stat", choices=["median", "min"], default="median",
                   help="what is reported of the repeats (default median; min is steadier on a busy machine)")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    args = p.parse_args(argv)
    names = list(WORKLOADS) if args.workload == "all" else args.workload.split(",")
    for n in names:
        if n not in WORKLOADS:
            p.error("unknown workload %r (known: %s)" % (n, ", ".join(WORKLOADS)))
    args.names = names
    return args


def main(argv=None):
    args = parse_args(argv)
    import torch
    from torch import nn

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    class MGU(nn.Module):
        """The minimal gated unit as a Python loop; returns the last hidden state [batch, hidden]."""

        def __init__(self, features, hidden):
            super().__init__()
            self.hidden = hidden
            # Keras' initialisers (as Unroll's cell): glorot-uniform kernel, orthogonal recurrent kernels.
            self.kernel = nn.Parameter(nn.init.xavier_uniform_(torch.empty(features, 2 * hidden)))
            self.forget_recurrent = nn.Parameter(nn.init.orthogonal_(torch.empty(hidden, hidden)))
            self.candidate_recurrent = nn.Parameter(nn.init.orthogonal_(torch.empty(hidden, hidden)))
            self.bias = nn.Parameter(torch.zeros(2 * hidden))

        def forward(self, x):
            n = self.hidden
            projected = x @ self.kernel + self.bias  # [batch, time, 2 * hidden]
            h = x.new_zeros(x.shape[0], n)
            for t in range(x.shape[1]):
                p = projected[:, t]
                f = torch.sigmoid(p[:, :n] + h @ self.forget_recurrent)
                candidate = torch.tanh(p[:, n:] + (f * h) @ self.candidate_recurrent)
                h = (1 - f) * h + f * candidate
            return h

    class Net(nn.Module):
        def __init__(self, cell, hidden, features, outputs):
            super().__init__()
            self.custom = cell == "mgu"
            if self.custom:
                self.rnn = MGU(features, hidden)
            else:
                rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
                self.rnn = rnn_cls(features, hidden, batch_first=True)
            self.head = nn.Linear(hidden, outputs)

        def forward(self, x):
            if self.custom:
                return self.head(self.rnn(x))
            seq, _ = self.rnn(x)
            return self.head(seq[:, -1, :])

    for name in args.names:
        cell, hidden, batch, steps_t, features, outputs, d_steps, d_warm = WORKLOADS[name]
        steps = args.steps if args.steps is not None else d_steps
        warmup = args.warmup if args.warmup is not None else d_warm
        torch.manual_seed(args.seed)
        model = Net(cell, hidden, features, outputs)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.MSELoss()
        x = torch.randn(batch, steps_t, features)
        y = torch.randn(batch, outputs)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            return loss

        for _ in range(warmup):
            step()
        per_repeat = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for _ in range(steps):
                loss = step()
            loss.item()
            per_repeat.append((time.perf_counter() - t0) * 1000.0 / steps)
        ms = (min(per_repeat) if args.stat == "min" else statistics.median(per_repeat))
        if args.json:
            print(json.dumps({"framework": "pytorch", "workload": name, "msPerStep": round(ms, 4)}), flush=True)
        else:
            print("pytorch %-10s %10.3f ms/step  (repeats: %s; steps %d, warm-up %d, torch %s, %d threads)"
                  % (name, ms, ", ".join("%.3f" % v for v in per_repeat), steps, warmup,
                     torch.__version__, torch.get_num_threads()), flush=True)


if __name__ == "__main__":
    sys.exit(main())
