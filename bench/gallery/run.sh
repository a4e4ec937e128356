#!/usr/bin/env bash
# Gallery benchmark: every store of likeness-gallery beside exact brute force and FAISS
# (IndexHNSWFlat, IndexBinaryFlat + exact re-rank, IndexFlatL2), on synthetic clustered
# galleries (see README.md for how they are made).
#
#   bench/gallery/run.sh [SIZE...]          default: 10000 100000
#   bench/gallery/run.sh 1000000            the 1M run (embedded, exact, FAISS; pgvector if
#                                           PG_MAX allows)
#
# Env: JSON_MAX (largest size the JSON store runs at, default 10000: it rewrites and re-reads
# the whole file on every call), PG_MAX (default 100000), QUERIES (default 1000), ONE_BY_ONE
# (enrolments timed one call each, default 1000; at most 200 for the JSON store, which also
# answers at most 200 queries: each takes ~0.3 s at 10k), STORES (default
# "exact embedded json postgres faiss faiss-binary faiss-flat"), PG_INDEX_TIMEOUT (s, default
# 1800). FAISS's HNSW index is built and saved as target/bench-gallery/work/
# faiss-N-m16-efc100.index; when that file exists it is searched again instead of rebuilt
# (25 minutes at 1M on one core), and its row has no build time.
# Results are appended to bench/gallery/results.jsonl (one JSON object per store, size and
# ef); bench/gallery/table.py prints the README's tables from it. Data and stores live in
# target/bench-gallery/ (git-ignored); FAISS in the venv target/bench-venv (made here).
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZES=${*:-10000 100000}
JSON_MAX=${JSON_MAX:-10000}
PG_MAX=${PG_MAX:-100000}
QUERIES=${QUERIES:-1000}
ONE_BY_ONE=${ONE_BY_ONE:-1000}
STORES=${STORES:-exact embedded json postgres faiss faiss-binary faiss-flat}
PG_INDEX_TIMEOUT=${PG_INDEX_TIMEOUT:-1800}
ROOT=target/bench-gallery
RESULTS=bench/gallery/results.jsonl
VENV=target/bench-venv
export LIKENESS_PG_DIR=$PWD/$ROOT/pg LIKENESS_PG_PORT=${LIKENESS_PG_PORT:-54341}
mkdir -p "$ROOT"

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import faiss, numpy' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check faiss-cpu numpy
fi
cargo build --workspace --release --example gallery_bench
BIN=target/release/examples/gallery_bench

started_pg=
stop_pg() { [ -z "$started_pg" ] || scripts/postgres.sh stop; }
trap stop_pg EXIT

echo "# $(date -u +%FT%TZ) sizes: $SIZES; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for n in $SIZES; do
    data=$ROOT/data-$n
    [ -f "$data/gt.u32" ] || "$BIN" gen --people "$n" --queries "$QUERIES" --out "$data" >&2
    cat "$data/meta.json" >&2
    for store in $STORES; do
        echo "## $n $store ($(date -u +%T), load $(cut -d' ' -f1 /proc/loadavg))" >&2
        case $store in
            json)
                [ "$n" -le "$JSON_MAX" ] || { echo "skipped: above JSON_MAX" >&2; continue; }
                "$BIN" run --store json --data "$data" --work "$ROOT/work" \
                    --one-by-one "$(( ONE_BY_ONE < 200 ? ONE_BY_ONE : 200 ))" \
                    --queries "$(( QUERIES < 200 ? QUERIES : 200 ))" --results "$RESULTS" ;;
            postgres)
                [ "$n" -le "$PG_MAX" ] || { echo "skipped: above PG_MAX" >&2; continue; }
                if [ -z "$started_pg" ]; then scripts/postgres.sh start; started_pg=1; fi
                "$BIN" run --store postgres --data "$data" --work "$ROOT/work" \
                    --pg-url "$(scripts/postgres.sh url)" --one-by-one "$ONE_BY_ONE" \
                    --index-timeout "$PG_INDEX_TIMEOUT" --results "$RESULTS" ;;
            faiss)
                saved=$ROOT/work/faiss-$n-m16-efc100.index
                "$VENV/bin/python" bench/gallery/faiss_bench.py --data "$data" \
                    --work "$ROOT/work" --one-by-one "$ONE_BY_ONE" --results "$RESULTS" \
                    $( [ -f "$saved" ] && echo --index "$saved" ) ;;
            faiss-binary|faiss-flat)
                "$VENV/bin/python" bench/gallery/faiss_bench.py --data "$data" \
                    --work "$ROOT/work" --kind "${store#faiss-}" --results "$RESULTS" ;;
            *)
                "$BIN" run --store "$store" --data "$data" --work "$ROOT/work" \
                    --one-by-one "$ONE_BY_ONE" --results "$RESULTS" ;;
        esac
    done
done
"$VENV/bin/python" bench/gallery/table.py "$RESULTS"
