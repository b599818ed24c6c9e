#!/usr/bin/env bash
# Unroll vs. PyTorch / Keras (TensorFlow, JAX): one table of ms per training step.
# Usage: Benchmarks/compare.sh [--workload NAME] [--steps N] [--warmup N] [--peers LIST] [--no-unroll]
# See Benchmarks/README.md for the peer venv; $PEERS_PYTHON overrides its Python.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PEERS_PYTHON:-/work/venv-peers/bin/python}"
[ -x "$py" ] || py="$(command -v python3)"
exec "$py" "$here/compare.py" "$@"
