#!/usr/bin/env python3
"""Run Unroll's benchmark and the peer scripts; print one comparison table.

    Benchmarks/compare.sh [--workload NAME] [--steps N] [--warmup N] [--peers LIST] [--no-unroll]

Unroll's side is `swift run -c release unroll bench --json` (run from the
repository root), expected to print lines like
    {"workload": "seed-lstm", "msPerStep": 12.3}
If it fails or prints no such line, its column shows "-" and the peers still run.
The peers run under the Python of the peer venv (see Benchmarks/README.md):
--python, else $PEERS_PYTHON, else this Python.

The sides alternate: Unroll, the peers, Unroll, the peers, ... (--rounds, at
least 2), and each side's best (lowest) ms per workload over the rounds is kept,
because this machine's speed drifts: only numbers measured close together compare.
The table header gives the load average (/proc/loadavg, as `uptime` prints it)
before and after the run. The last column is (fastest peer's ms) / (Unroll's ms):
above 1, Unroll is faster.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOADS = ["seed-lstm", "small-rnn", "gru-long", "char-lstm", "custom-mgu"]
PEERS = {
    "pytorch": ("pytorch_bench.py", {}),
    "keras-tensorflow": ("keras_bench.py", {"KERAS_BACKEND": "tensorflow"}),
    "keras-jax": ("keras_bench.py", {"KERAS_BACKEND": "jax"}),
}
UNROLL_CMD = "swift run -c release unroll bench --json"


def default_python():
    return os.environ.get("PEERS_PYTHON") or sys.executable


def load_average():
    """The 1, 5 and 15 minute load averages, as `uptime` prints them."""
    try:
        with open("/proc/loadavg") as f:
            return ", ".join(f.read().split()[:3])
    except OSError:
        try:
            return subprocess.run(["uptime"], stdout=subprocess.PIPE, text=True).stdout.strip()
        except OSError:
            return "unknown"


def keep_best(best, found):
    """Merges one round's {workload: ms} into the best (lowest) seen so far."""
    for w, ms in found.items():
        if w not in best or ms < best[w]:
            best[w] = ms


def json_lines(text):
    """The {"workload": ..., "msPerStep": ...} objects among the lines of text."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "workload" in obj and isinstance(obj.get("msPerStep"), (int, float)):
            out[obj["workload"]] = float(obj["msPerStep"])
    return out


def run(label, cmd, env=None, cwd=ROOT, timeout=None):
    print("== %s: %s" % (label, " ".join(shlex.quote(c) for c in cmd)), file=sys.stderr, flush=True)
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=timeout)
    except FileNotFoundError as e:
        print("   %s: not run (%s)" % (label, e), file=sys.stderr)
        return {}
    except subprocess.TimeoutExpired:
        print("   %s: timed out after %s s" % (label, timeout), file=sys.stderr)
        return {}
    found = json_lines(proc.stdout)
    if proc.returncode != 0 or not found:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        print("   %s: exit %d, %d result(s)%s" % (label, proc.returncode, len(found),
              ("; last output:\n      " + tail.replace("\n", "\n      ")) if tail else ""),
              file=sys.stderr, flush=True)
    if found:  # this round's numbers, so that a slow round shows (the table keeps each side's best)
        print("   %s" % ", ".join("%s %s" % (w, fmt(ms)) for w, ms in found.items()), file=sys.stderr, flush=True)
    return found


def fmt(v):
    if v is None:
        return "-"
    return "%.3f" % v if v < 10 else "%.1f" % v


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", default="all", help="passed through to every side (default: all)")
    p.add_argument("--steps", type=int, help="passed to the peer scripts")
    p.add_argument("--warmup", type=int, help="passed to the peer scripts")
    p.add_argument("--repeats", type=int, help="passed to the peer scripts")
    p.add_argument("--stat", choices=["median", "min"], help="passed to the peer scripts and to unroll bench")
    p.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of %s" % ", ".join(PEERS))
    p.add_argument("--python", default=default_python(), help="Python for the peer scripts")
    p.add_argument("--unroll-cmd", default=UNROLL_CMD, help="command for Unroll's side (default: %(default)s)")
    p.add_argument("--no-unroll", action="store_true", help="skip Unroll's side")
    p.add_argument("--timeout", type=float, default=None, help="seconds allowed to each command")
    p.add_argument("--rounds", type=int, default=2,
                   help="alternating rounds (Unroll, peers, Unroll, peers, ...); each side's best is kept (default 2)")
    p.add_argument("--json", action="store_true", help="print the table as JSON lines instead")
    args = p.parse_args(argv)

    peers = [s for s in args.peers.split(",") if s]
    for s in peers:
        if s not in PEERS:
            p.error("unknown peer %r (known: %s)" % (s, ", ".join(PEERS)))
    wl_args = [] if args.workload == "all" else ["--workload", args.workload]
    names = WORKLOADS if args.workload == "all" else args.workload.split(",")

    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    load_before = load_average()
    stat_args = ["--stat", args.stat] if args.stat is not None else []
    peer_args = list(wl_args)
    if args.steps is not None:
        peer_args += ["--steps", str(args.steps)]
    if args.warmup is not None:
        peer_args += ["--warmup", str(args.warmup)]
    if args.repeats is not None:
        peer_args += ["--repeats", str(args.repeats)]
    if args.stat is not None:
        peer_args += ["--stat", args.stat]
    results = {} if args.no_unroll else {"unroll": {}}
    for s in peers:
        results[s] = {}
    for round_number in range(1, args.rounds + 1):
        label = " (round %d/%d)" % (round_number, args.rounds)
        if not args.no_unroll:
            keep_best(results["unroll"],
                      run("unroll" + label, shlex.split(args.unroll_cmd) + wl_args + stat_args, timeout=args.timeout))
        for s in peers:
            script, extra_env = PEERS[s]
            env = dict(os.environ, **extra_env)
            cmd = [args.python, os.path.join(HERE, "peers", script), "--json"] + peer_args
            keep_best(results[s], run(s + label, cmd, env=env, timeout=args.timeout))
    load_after = load_average()

    # Workloads that some side reported but that are not in the default list go at the end.
    for side in results.values():
        for w in side:
            if w not in names and args.workload == "all":
                names.append(w)

    rows = []
    for w in names:
        u = results.get("unroll", {}).get(w)
        peer_ms = {s: results[s].get(w) for s in peers}
        have = [(v, s) for s, v in peer_ms.items() if v is not None]
        best = min(have) if have else None
        ratio = best[0] / u if (best and u) else None
        rows.append((w, u, peer_ms, best, ratio))

    if args.json:
        print(json.dumps({"rounds": args.rounds, "loadAverageBefore": load_before, "loadAverageAfter": load_after}))
        for w, u, peer_ms, best, ratio in rows:
            print(json.dumps({"workload": w, "unrollMs": u, "peersMs": peer_ms,
                              "fastestPeer": best[1] if best else None,
                              "fastestPeerOverUnroll": round(ratio, 3) if ratio else None}))
        return 0

    print("best of %d alternating round(s) per side; load average %s before, %s after"
          % (args.rounds, load_before, load_after))
    header = ["workload", "Unroll ms"] + ["%s ms" % s for s in peers] + ["fastest peer / Unroll"]
    table = [header]
    for w, u, peer_ms, best, ratio in rows:
        table.append([w, fmt(u)] + [fmt(peer_ms[s]) for s in peers]
                     + ["%.2fx (%s)" % (ratio, best[1]) if ratio else "-"])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, r in enumerate(table):
        print("  ".join(c.ljust(widths[j]) if j == 0 else c.rjust(widths[j]) for j, c in enumerate(r)))
        if i == 0:
            print("  ".join("-" * n for n in widths))
    print("(ms per training step: forward + backprop through time + Adam; ratio > 1: Unroll is faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
