"""Prints bench/gallery's README tables from results.jsonl (the last row of each store, size
and ef wins). Standard library only.

    python bench/gallery/table.py bench/gallery/results.jsonl [DECAY]

DECAY picks the data set (gallery_bench gen --decay; 0 = isotropic, the default).
"""

import json
import sys

ORDER = ["json", "embedded", "postgres", "exact", "faiss", "hnsw-raw"]
DEFAULT_EF = 64  # hnsw.rs DEFAULT_EF_SEARCH: the FAISS row of the main table


def fmt(v, digits=3):
    if v is None:
        return "—"
    if isinstance(v, float):
        if v != v:
            return "—"
        if v >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}" if v < 1 else f"{v:.{digits}g}" if v < 100 else f"{v:.0f}"
    return str(v)


def main(path, decay=0.0):
    rows = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if r.get("decay", 0.0) == decay:
                    rows[(r["people"], r["store"], r.get("ef_search"))] = r
    sizes = sorted({k[0] for k in rows})
    print("| people | store | bulk enrol (people/s) | one-by-one (people/s) | identify p50 (ms) "
          "| p99 (ms) | recall@1 | RSS (MiB) | disk (MiB) | index build (s) | cold start (ms) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        for s in ORDER[:-1]:
            key = (n, s, DEFAULT_EF if s == "faiss" else None)
            r = rows.get(key)
            if r is None:
                continue
            name = s if s != "faiss" else f"faiss (ef {DEFAULT_EF})"
            print(f"| {n:,} | {name} | {fmt(r.get('bulk_people_per_s'))} "
                  f"| {fmt(r.get('one_by_one_people_per_s'))} | {fmt(r.get('p50_ms'))} "
                  f"| {fmt(r.get('p99_ms'))} | {fmt(r.get('recall_at_1'), 4)} "
                  f"| {fmt(r.get('rss_mib'))} | {fmt(r.get('disk_mib'))} "
                  f"| {fmt(r.get('index_build_s'))} | {fmt(r.get('cold_start_ms'))} |")
    print()
    names = {"hnsw-raw": "likeness hnsw (raw)", "faiss": "FAISS IndexHNSWFlat",
             "hnsw-tuned": "likeness hnsw (raw)", "faiss-tuned": "FAISS IndexHNSWFlat"}
    print("| people | graph | M / efC | build (s) | ef | p50 (ms) | p99 (ms) | recall@1 |")
    print("|---|---|---|---|---|---|---|---|")
    for n in sizes:
        for s in ("hnsw-raw", "faiss", "hnsw-tuned", "faiss-tuned"):
            for (nn, ss, ef), r in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or 0)):
                if nn == n and ss == s and ef is not None:
                    build = r.get("index_build_s")
                    if s == "hnsw-raw":  # the embedded store built this graph
                        build = rows.get((n, "embedded", None), {}).get("index_build_s")
                    print(f"| {n:,} | {names[s]} | {r.get('m')} / {r.get('ef_construction')} "
                          f"| {fmt(build)} | {ef} | {fmt(r['p50_ms'])} "
                          f"| {fmt(r['p99_ms'])} | {fmt(r['recall_at_1'], 4)} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/gallery/results.jsonl",
         float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
