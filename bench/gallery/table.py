"""Prints bench/gallery's README tables from results.jsonl (the last row of each store, size
and setting wins). Standard library only.

    python bench/gallery/table.py [bench/gallery/results.jsonl] [DECAY]

DECAY picks the data set (gallery_bench gen --decay; 0 = isotropic, the default).
results-hnsw.jsonl holds the rows of the HNSW graph the sketch index replaced; this script
prints its main table too.
"""

import json
import sys

# store -> (label in the main table, the setting whose row stands for it there)
MAIN = {
    "json": ("json", None),
    "embedded": ("embedded", None),
    "postgres": ("postgres", None),
    "exact": ("exact (ours)", None),
    "faiss": ("FAISS HNSW (ef 64)", 64),
    "faiss-binary": ("FAISS binary + re-rank (1024)", 1024),
    "faiss-flat": ("FAISS flat (exact)", None),
}
# the recall-latency curves: store -> (label, what the setting is)
CURVES = {
    "sketch-raw": ("likeness sketch index (raw)", "candidates"),
    "faiss-binary": ("FAISS IndexBinaryFlat + re-rank", "candidates"),
    "faiss": ("FAISS IndexHNSWFlat, M 16 / efC 100", "ef"),
    "pgvector-raw": ("pgvector HNSW, M 16 / efC 100 (one SQL query)", "ef_search"),
}


def fmt(v, digits=3):
    if v is None:
        return "—"
    if isinstance(v, float):
        if v != v:
            return "—"
        if v >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}" if v < 100 else f"{v:.0f}"
    return str(v)


def setting(r):
    return r.get("ef_search") if r.get("ef_search") is not None else r.get("candidates")


def main(path, decay=0.0):
    rows = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if r.get("decay", 0.0) == decay:
                    rows[(r["people"], r["store"], setting(r))] = r
    sizes = sorted({k[0] for k in rows})
    print("| people | store | bulk enrol (people/s) | one-by-one (people/s) | identify p50 (ms) "
          "| p99 (ms) | recall@1 | RSS (MiB) | disk (MiB) | index build (s) | cold start (ms) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        for s, (label, at) in MAIN.items():
            r = rows.get((n, s, at))
            if r is None:
                continue
            print(f"| {n:,} | {label} | {fmt(r.get('bulk_people_per_s'))} "
                  f"| {fmt(r.get('one_by_one_people_per_s'))} | {fmt(r.get('p50_ms'))} "
                  f"| {fmt(r.get('p99_ms'))} | {fmt(r.get('recall_at_1'), 4)} "
                  f"| {fmt(r.get('rss_mib'))} | {fmt(r.get('disk_mib'))} "
                  f"| {fmt(r.get('index_build_s'))} | {fmt(r.get('cold_start_ms'))} |")
    print()
    print("| people | index | setting | p50 (ms) | p99 (ms) | recall@1 |")
    print("|---|---|---|---|---|---|")
    for n in sizes:
        for s, (label, what) in CURVES.items():
            for (nn, ss, at), r in sorted(rows.items(), key=lambda kv: kv[0][2] or 0):
                if nn == n and ss == s and at is not None:
                    print(f"| {n:,} | {label} | {what} {at} | {fmt(r['p50_ms'])} "
                          f"| {fmt(r['p99_ms'])} | {fmt(r['recall_at_1'], 4)} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/gallery/results.jsonl",
         float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
