#!/usr/bin/env bash
# Time per face of the liveness network, likeness beside onnxruntime in the same run, on the
# same crops (crates/likeness-nn/tests/data/liveness), batch 1, THREADS="1 2", REPS=30.
# Run bench/liveness/setup.sh once first.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${REPS:-30}
THREADS=${THREADS:-"1 2"}
# --workspace, not -p: a one-crate build selects other features and rebuilds burn.
cargo build -q --workspace --example bench_liveness
uptime
for t in $THREADS; do
    RAYON_NUM_THREADS=$t target/debug/examples/bench_liveness "$REPS"
    OMP_NUM_THREADS=$t bench/.venv-liveness/bin/python bench/liveness/time_reference.py "$t" "$REPS"
done
uptime
