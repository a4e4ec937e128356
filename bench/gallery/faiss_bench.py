"""bench/gallery's anchor: FAISS on the very vectors gallery_bench wrote.

Three kinds, one query per search call like an identify call, one JSON object per setting
printed and appended to --results:

- hnsw (default): IndexHNSWFlat with pgvector's M and efConstruction (16, 100; likeness's own
  graph, replaced by the sketch index, used them too), searched at several efSearch so
  latency can be compared at equal recall. --index PATH reads a saved index instead of
  building one (a 1M build takes ~25 minutes on one core).
- binary: the embedded store's method with FAISS's kernels: 256-bit sign sketches of the
  same kind (random Gaussian projections of vector - mean; FAISS has no such encoder, so
  numpy makes them), IndexBinaryFlat returns the 1024 nearest by Hamming distance, numpy
  re-ranks them exactly (likeness_gallery::sketch::{BITS, RERANK}).
- flat: IndexFlatL2, exact search.

    python faiss_bench.py --data DIR --work DIR [--kind hnsw|binary|flat] [--threads 1]
                          [--one-by-one 1000] [--index PATH] [--results F]
"""

import argparse
import json
import os
import time

import faiss
import numpy as np

DIM = 128
M = 16  # pg.rs HNSW_M
EF_CONSTRUCTION = 100  # pg.rs HNSW_EF_CONSTRUCTION
EF_SEARCHES = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
BITS = 256  # sketch.rs BITS
RERANKS = [64, 256, 1024, 4096]  # sketch.rs RERANK = 1024
WARMUP = 100  # as gallery_bench


def rss_mib():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = round(int(v.split()[0]) / 1024, 3)
    return out.get("VmRSS"), out.get("VmHWM")


def pct(sorted_ms, p):
    i = round(p / 100 * (len(sorted_ms) - 1))
    return round(sorted_ms[min(i, len(sorted_ms) - 1)], 3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--one-by-one", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=None)
    ap.add_argument("--results")
    ap.add_argument("--m", type=int, default=M)
    ap.add_argument("--efc", type=int, default=EF_CONSTRUCTION)
    ap.add_argument("--kind", choices=["hnsw", "binary", "flat"], default="hnsw")
    ap.add_argument("--index", help="a saved IndexHNSWFlat to search instead of building one")
    a = ap.parse_args()
    faiss.omp_set_num_threads(a.threads)
    os.makedirs(a.work, exist_ok=True)

    xb = np.fromfile(os.path.join(a.data, "gallery.f32"), dtype="<f4").reshape(-1, DIM)
    xq = np.fromfile(os.path.join(a.data, "queries.f32"), dtype="<f4").reshape(-1, DIM)
    gt = np.fromfile(os.path.join(a.data, "gt.u32"), dtype="<u4").astype(np.int64)
    if a.queries:
        xq, gt = xq[: a.queries], gt[: a.queries]
    n = xb.shape[0]
    with open(os.path.join(a.data, "meta.json")) as f:
        decay = json.load(f).get("decay", 0.0)

    common = {"people": n, "queries": len(xq), "threads": a.threads,
              "faiss": faiss.__version__, "decay": decay}
    if a.kind != "hnsw":
        rows = (binary if a.kind == "binary" else flat)(xb, xq, gt, common)
        emit(rows, a.results)
        return

    if a.index:
        index = faiss.read_index(a.index)
        build, path = None, a.index
    else:
        index = faiss.IndexHNSWFlat(DIM, a.m)
        index.hnsw.efConstruction = a.efc
        t = time.perf_counter()
        index.add(xb)
        build = time.perf_counter() - t
        path = os.path.join(a.work, f"faiss-{n}-m{a.m}-efc{a.efc}.index")
        faiss.write_index(index, path)
    disk = round(os.path.getsize(path) / 2**20, 3)

    rows = []
    for ef in EF_SEARCHES:
        index.hnsw.efSearch = ef
        for q in xq[:WARMUP]:
            index.search(q[None, :], 1)
        lat, hits = [], 0
        for q, g in zip(xq, gt):
            t = time.perf_counter()
            _, ids = index.search(q[None, :], 1)
            lat.append((time.perf_counter() - t) * 1e3)
            hits += int(ids[0, 0] == g)
        lat.sort()
        rss, hwm = rss_mib()
        rows.append({
            "store": "faiss" if (a.m, a.efc) == (M, EF_CONSTRUCTION) else "faiss-tuned",
            "people": n, "queries": len(xq),
            "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
            "recall_at_1": hits / len(xq),
            "ef_search": ef, "m": a.m, "ef_construction": a.efc,
            "index_build_s": round(build, 3) if build else None,
            "bulk_people_per_s": round(n / build, 3) if build else None,
            "rss_mib": rss, "peak_rss_mib": hwm, "disk_mib": disk,
            "threads": a.threads, "faiss": faiss.__version__, "decay": decay,
        })

    # cold start: read the saved index and answer one query
    t = time.perf_counter()
    again = faiss.read_index(path)
    again.hnsw.efSearch = 64
    again.search(xq[:1], 1)
    cold = (time.perf_counter() - t) * 1e3
    del again

    # one-by-one: new vectors added one call each to the built index
    rng = np.random.default_rng(7)
    extra = rng.standard_normal((a.one_by_one, DIM)).astype("f4")
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    t = time.perf_counter()
    for v in extra:
        index.add(v[None, :])
    one = a.one_by_one / (time.perf_counter() - t) if a.one_by_one else None
    for r in rows:
        r["cold_start_ms"] = round(cold, 3)
        r["one_by_one_people_per_s"] = round(one, 3) if one else None
        r["one_by_one_n"] = a.one_by_one

    emit(rows, a.results)


def timed(xq, gt, search):
    """p50/p99 and recall@1 of `search(q) -> row id`, after the warm-up queries."""
    for q in xq[:WARMUP]:
        search(q)
    lat, hits = [], 0
    for q, g in zip(xq, gt):
        t = time.perf_counter()
        best = search(q)
        lat.append((time.perf_counter() - t) * 1e3)
        hits += int(best == g)
    lat.sort()
    return {"p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "recall_at_1": hits / len(xq)}


def binary(xb, xq, gt, common):
    rng = np.random.default_rng(12)
    planes = rng.standard_normal((DIM, BITS)).astype("f4")
    mean = xb.mean(axis=0)
    t = time.perf_counter()
    codes = np.packbits((xb - mean) @ planes > 0, axis=1)
    index = faiss.IndexBinaryFlat(BITS)
    index.add(codes)
    build = time.perf_counter() - t
    rows = []
    for rerank in RERANKS:
        def search(q):
            code = np.packbits((q - mean) @ planes > 0)[None, :]
            _, ids = index.search(code, rerank)
            ids = ids[0]
            d = ((xb[ids] - q) ** 2).sum(axis=1)
            return ids[np.argmin(d)]
        rss, hwm = rss_mib()
        rows.append({"store": "faiss-binary", **common, **timed(xq, gt, search),
                     "candidates": rerank, "bits": BITS, "index_build_s": round(build, 3),
                     "rss_mib": rss, "peak_rss_mib": hwm})
    return rows


def flat(xb, xq, gt, common):
    index = faiss.IndexFlatL2(DIM)
    index.add(xb)
    rss, hwm = rss_mib()
    return [{"store": "faiss-flat", **common,
             **timed(xq, gt, lambda q: index.search(q[None, :], 1)[1][0, 0]),
             "rss_mib": rss, "peak_rss_mib": hwm}]


def emit(rows, results):
    with open(results, "a") if results else open(os.devnull, "w") as f:
        for r in rows:
            line = json.dumps(r)
            print(line)
            f.write(line + "\n")


if __name__ == "__main__":
    main()
