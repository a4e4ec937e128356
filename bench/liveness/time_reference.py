#!/usr/bin/env python3
"""onnxruntime's time per face on the same crops and model (batch 1, median after a warm-up).

Usage: time_reference.py THREADS REPS; prints one JSON line.
"""
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
HOME = Path(os.environ.get("LIKENESS_HOME", Path.home() / ".cache" / "likeness"))
threads, reps = int(sys.argv[1]), int(sys.argv[2])
options = ort.SessionOptions()
options.intra_op_num_threads = threads
session = ort.InferenceSession(str(HOME / "raw/faceplugin/fr_liveness.onnx"), options,
                               providers=["CPUExecutionProvider"])
crops = [np.ascontiguousarray(np.asarray(Image.open(p).convert("RGB"), np.float32)
                              .transpose(2, 0, 1)[None])
         for p in sorted((ROOT / "crates/likeness-nn/tests/data/liveness").glob("*.png"))]
times = []
for rep in range(reps + 1):
    x = crops[rep % len(crops)]
    t = time.perf_counter()
    z = session.run(None, {"input": x})[0]
    e = np.exp(z - z.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    if rep:
        times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"side": f"onnxruntime {ort.__version__}", "threads": threads, "reps": reps,
                  "median_ms": round(times[len(times) // 2] * 1e3, 3),
                  "min_ms": round(times[0] * 1e3, 3)}))
