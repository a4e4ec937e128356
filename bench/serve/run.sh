#!/usr/bin/env bash
# Load benchmark of `likeness serve` (loopback only, bounded): recognize on a one-face 640x480
# photo and on a group photo. For each: the machine's capacity running the CLI's pipeline
# in-process, saturation throughput (closed loop), p50/p99 at 50 % and 100 % of it (open
# loop), and 2x offered load (only 200/429 allowed), with the server's peak RSS.
# Usage: bench/serve/run.sh [SECONDS per phase, default 30]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-30}
OUT=bench/serve/results.jsonl
PORT=${PORT:-18686}
export LIKENESS_ADMIN_KEY=bench-admin-key-0123456789
# the example's `serve` starts the service exactly as `likeness serve` does
# (likeness_server::start), without building the whole command line
# --workspace: a -p build selects other features and rebuilds burn
cargo build -q --workspace --example load
LOAD=target/debug/examples/load
work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

# the one-face 640x480 photo: the cache's astronaut (512x512) centred on a grey 640x480 canvas
$LOAD pad "$HOME/.cache/likeness/samples/astronaut.png" 640 480 "$work/one.png"
GROUP="$HOME/.cache/likeness/samples/t1.jpg"

$LOAD serve 127.0.0.1:$PORT "$work/data" ${WORKERS:-} 2>"$work/serve.log" &
echo $! > "$work/pid"
SERVER=$(cat "$work/pid")
for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.3; done
curl -sf -H "x-api-key: $LIKENESS_ADMIN_KEY" -H 'content-type: application/json' \
    -d '{"name":"bench"}' http://127.0.0.1:$PORT/api/v1/admin/galleries >/dev/null
KEY=$(curl -sf -H "x-api-key: $LIKENESS_ADMIN_KEY" -H 'content-type: application/json' \
    -d '{"gallery":"bench","scopes":["recognize","manage"]}' http://127.0.0.1:$PORT/api/v1/admin/keys \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
# ten people enrolled, so recognize compares against a gallery
for i in $(seq 10); do
    curl -sf -H "x-api-key: $KEY" -F file=@"$HOME/.cache/likeness/samples/astronaut.png" \
        "http://127.0.0.1:$PORT/api/v1/recognition/faces?subject=p$i&insist=true" >/dev/null
done

: > "$OUT"
for photo in "$work/one.png" "$GROUP"; do
    name=$(basename "$photo")
    echo "== $name (uptime: $(uptime | sed 's/.*load/load/'))" >&2
    $LOAD capacity "$photo" "$SECS" | sed "s/^{/{\"photo\":\"$name\",/" | tee -a "$OUT"
    sat=$($LOAD closed 127.0.0.1:$PORT "$KEY" "$photo" 4 "$SECS" "$SERVER" | sed "s/^{/{\"photo\":\"$name\",/" | tee -a "$OUT" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["ok_per_s"])')
    for f in 0.5 1.0 2.0; do
        rate=$(python3 -c "print($sat*$f)")
        $LOAD open 127.0.0.1:$PORT "$KEY" "$photo" "$rate" "$SECS" "$SERVER" \
            | sed "s/^{/{\"photo\":\"$name\",\"fraction\":$f,/" | tee -a "$OUT"
    done
done
echo "results in $OUT" >&2
