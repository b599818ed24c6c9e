#!/usr/bin/env bash
# Unroll vs. PyTorch / Keras (TensorFlow, JAX): one table of ms per training step.
# Usage: Benchmarks/compare.sh [--workload NAME] [--steps N] [--warmup N] [--peers LIST] [--no-unroll] [--rounds N]
# The peers run under $PEERS_PYTHON (the peer venv's Python; see Benchmarks/README.md), or --python PATH,
# else under python3 from PATH. The sides alternate for --rounds rounds (default 2), each side's best kept.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PEERS_PYTHON:-$(command -v python3)}"
exec "$py" "$here/compare.py" "$@"
