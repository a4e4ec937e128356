#!/usr/bin/env bash
# Network benchmark: the forward time of each of likeness's networks beside its reference on the
# same machine in the same run — VGG-16 vs PyTorch, dlib's ResNet vs dlib, BlazeFace vs
# onnxruntime on the same ONNX files. Run bench/nets/setup.sh once first.
#
#   bench/nets/run.sh        (REPS=10 timed runs after one warm-up; THREADS="1 2")
#
# Every side runs with the same thread count in turn (rayon's pool, torch.set_num_threads,
# onnxruntime's intra-op threads); dlib-bin is single-threaded whatever is asked (no BLAS).
# Raw records go to bench/nets/out/ (ignored by git); collate.py writes results.json and
# results.md (the table), and checks that both sides' outputs agree.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${REPS:-10}
THREADS=${THREADS:-"1 2"}
OUT=bench/nets/out
mkdir -p "$OUT"

# The dev profile: dependencies are built at opt-level 3 (see the workspace Cargo.toml).
cargo build -q --workspace --example bench_nets
BIN=target/debug/examples/bench_nets

{ nproc; uptime; } > "$OUT/uptime_before.txt"
for t in $THREADS; do
    export OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t MKL_NUM_THREADS=$t
    RAYON_NUM_THREADS=$t "$BIN" "$REPS" > "$OUT/likeness_$t.jsonl"
    bench/.venv/bin/python bench/nets/reference.py vgg16 "$t" "$REPS" > "$OUT/reference_$t.jsonl"
    bench/.venv-faces/bin/python bench/nets/reference.py dlib "$t" "$REPS" >> "$OUT/reference_$t.jsonl"
    bench/.venv-faces/bin/python bench/nets/reference.py blazeface "$t" "$REPS" >> "$OUT/reference_$t.jsonl"
done
uptime > "$OUT/uptime_after.txt"
python3 bench/nets/collate.py "$OUT" bench/nets
