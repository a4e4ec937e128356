"""Pairs bench_nets' records with the references' (same network, input, batch, threads) into
results.json and results.md. Refuses a pair whose output checksums disagree: then the two sides
did not compute the same thing and their times are not comparable."""

import glob
import json
import os
import re
import sys

# Checksums are sums over thousands of float32 values; summation order differs between
# libraries, so agreement is relative to the magnitude summed.
CHECKSUM_RTOL = 1e-3


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main(out, dest):
    rows = []
    for path in sorted(glob.glob(os.path.join(out, "likeness_*.jsonl"))):
        threads = int(re.search(r"likeness_(\d+)", path).group(1))
        ours = load(path)
        theirs = {(r["net"], r["batch"]): r for r in load(os.path.join(out, f"reference_{threads}.jsonl"))}
        for r in ours:
            ref = theirs[(r["net"], r["batch"])]
            scale = max(abs(ref["checksum"]), 1.0)
            if abs(r["checksum"] - ref["checksum"]) > CHECKSUM_RTOL * scale:
                sys.exit(f"{r['net']} batch {r['batch']}: outputs differ "
                         f"(checksum {r['checksum']} vs {ref['checksum']})")
            rows.append({
                "net": r["net"], "input": r["input"], "batch": r["batch"], "threads": threads,
                "likeness_ms": r["median_ms"], "reference": ref["impl"], "reference_ms": ref["median_ms"],
                "ratio": round(r["median_ms"] / ref["median_ms"], 2),
                "checksums": [r["checksum"], ref["checksum"]],
                "likeness_runs_ms": r["runs_ms"], "reference_runs_ms": ref["runs_ms"],
            })
    uptime = {k: open(os.path.join(out, f"uptime_{k}.txt")).read().strip() for k in ("before", "after")}
    with open(os.path.join(dest, "results.json"), "w") as f:
        json.dump({"uptime": uptime, "rows": rows}, f, indent=1)
    lines = ["| network | input | batch | threads | likeness ms | reference | reference ms | ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["net"], r["batch"], r["threads"])):
        lines.append(f"| {r['net']} | {r['input']} | {r['batch']} | {r['threads']} | {r['likeness_ms']:.1f} | "
                     f"{r['reference']} | {r['reference_ms']:.1f} | {r['ratio']:.2f}× |")
    with open(os.path.join(dest, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
