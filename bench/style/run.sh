#!/usr/bin/env bash
# Style-transfer benchmark: likeness beside PyTorch (CPU, 2 threads each), same VGG-16 weights,
# same images, same objective, same start. Run bench/style/setup.sh once first.
#
#   bench/style/run.sh [all|time|lbfgs|collate]
#
# time:    seconds per evaluation of J and dJ/dG (forward + input gradient) at 256 and 512 px,
#          one warm-up then REPS_256 / REPS_512 timed, each implementation in its own process
#          (so each process's peak RSS is that size's peak memory), alternating.
# lbfgs:   ITERS L-BFGS iterations at 256 px from the content image, loss after every iteration.
# collate: bench/style/results.json, loss_likeness.csv, loss_pytorch.csv, loss_curve.png and a
#          markdown table on stdout.
# Raw outputs go to bench/style/out/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/../.."
PHASE=${1:-all}
OUT=bench/style/out
REPS_256=${REPS_256:-5}
REPS_512=${REPS_512:-3}
ITERS=${ITERS:-300}
PY=bench/.venv/bin/python
BIN=target/debug/examples/bench_style
mkdir -p "$OUT"

# The dev profile: dependencies are built at opt-level 3 (see the workspace Cargo.toml).
cargo build -q --workspace --example bench_style

if [[ $PHASE == all || $PHASE == time ]]; then
    uptime > "$OUT/uptime_time_before.txt"
    for size in 256 512; do
        reps=REPS_$size
        "$BIN" time "$size" "${!reps}" "$OUT"
        "$PY" bench/style/torch_style.py time "$size" "${!reps}" "$OUT"
    done
    uptime > "$OUT/uptime_time_after.txt"
fi
if [[ $PHASE == all || $PHASE == lbfgs ]]; then
    uptime > "$OUT/uptime_lbfgs_before.txt"
    "$BIN" lbfgs 256 "$ITERS" "$OUT"
    "$PY" bench/style/torch_style.py lbfgs 256 "$ITERS" "$OUT"
    uptime > "$OUT/uptime_lbfgs_after.txt"
fi
if [[ $PHASE == all || $PHASE == collate ]]; then
    "$PY" bench/style/collate.py "$OUT" bench/style
fi
