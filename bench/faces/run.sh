#!/usr/bin/env bash
# Faces benchmark: likeness beside face_recognition (the real dlib, from dlib-bin), same photos,
# same run, photo decoding left out on both sides. Run bench/faces/setup.sh once first.
#
#   bench/faces/run.sh            (REPS=5 timed runs per photo after one warm-up; medians)
#
# Three measurements, one after the other: likeness on rayon's default pool (one thread per
# core), likeness with RAYON_NUM_THREADS=1, and face_recognition (dlib-bin is built without
# BLAS and runs single-threaded). Raw outputs go to bench/faces/out/ (ignored by git); the
# combined bench/faces/results.json and results.md (the table) are written by collate.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${REPS:-5}
OUT=bench/faces/out
PY=bench/.venv-faces/bin/python
BIN=target/debug/examples/bench_faces
SAMPLES=${LIKENESS_HOME:-$HOME/.cache/likeness}/samples
PHOTOS=()
for p in astronaut.png t1.jpg sample1.jpg sample2.jpg sample3.jpg sample4.jpg sample5.jpg sample6.jpg; do
    PHOTOS+=("$SAMPLES/$p")
done
mkdir -p "$OUT"

# The dev profile: dependencies are built at opt-level 3 (see the workspace Cargo.toml).
cargo build -q --workspace --example bench_faces

{ nproc; uptime; } > "$OUT/uptime_before.txt"
"$BIN" "$REPS" "$OUT/likeness.json" "${PHOTOS[@]}"
RAYON_NUM_THREADS=1 "$BIN" "$REPS" "$OUT/likeness_1thread.json" "${PHOTOS[@]}"
# keep any BLAS/OpenMP that might be linked to one thread, as dlib's own code runs
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
    "$PY" bench/faces/face_recognition_bench.py "$REPS" "$OUT/face_recognition.json" "${PHOTOS[@]}"
uptime > "$OUT/uptime_after.txt"
"$PY" bench/faces/collate.py "$OUT" bench/faces
