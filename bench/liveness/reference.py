#!/usr/bin/env python3
"""Reference outputs of the liveness network for the Rust parity test.

Crops four real faces out of the model cache's sample photos the way the package does
(npm faceplugin-face-recognition-js@0.0.1, lib/fr_liveness.js, alignLivenessImage: the box
enlarged 2.7x around its centre, shifted back inside the photo, resized to 128x128), writes each
crop as a PNG and runs the original ONNX model on it with onnxruntime (CPU, default options).
The PNGs and onnxruntime's raw logits go to crates/likeness-nn/tests/data/liveness/, which the
test reads; nothing here is needed to run the tests.

The boxes are BlazeFace's (`likeness detect --json`, rounded to 0.1 px) but any box would do:
the parity test compares the two networks on the same pixels, not the crops.

Run: bench/liveness/setup.sh; bench/.venv-liveness/bin/python bench/liveness/reference.py
(reads $LIKENESS_HOME, default ~/.cache/likeness: samples/ and raw/faceplugin/fr_liveness.onnx).
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

HOME = Path(os.environ.get("LIKENESS_HOME", Path.home() / ".cache" / "likeness"))
OUT = Path(__file__).resolve().parents[2] / "crates/likeness-nn/tests/data/liveness"
SIZE = 128
SCALE = 2.7

# (photo, face box left, top, right, bottom): chosen to span the model's range of answers.
FACES = [
    ("astronaut.png", (171.9, 73.9, 277.6, 179.5)),
    ("t1.jpg", (744.9, 365.9, 851.3, 472.4)),
    ("sample6.jpg", (657.4, 377.4, 903.0, 622.8)),
    ("sample1.jpg", (1490.0, 260.4, 1648.9, 419.2)),
]


def crop(img, box):
    """The package's alignLivenessImage, with Pillow's bilinear resize."""
    w, h = img.size
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    s = min((h - 1) / bh, (w - 1) / bw, SCALE)
    cx, cy = x0 + bw / 2, y0 + bh / 2
    l, t, r, b = cx - bw * s / 2, cy - bh * s / 2, cx + bw * s / 2, cy + bh * s / 2
    if l < 0:
        r, l = r - l, 0
    if t < 0:
        b, t = b - t, 0
    if r > w - 1:
        l, r = l - (r - w + 1), w - 1
    if b > h - 1:
        t, b = t - (b - h + 1), h - 1
    return img.crop((int(l), int(t), int(r), int(b))).resize((SIZE, SIZE), Image.BILINEAR)


def main():
    model = HOME / "raw/faceplugin/fr_liveness.onnx"
    if not model.is_file():
        sys.exit(f"{model} is missing: run `likeness models fetch` first")
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    OUT.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (photo, box) in enumerate(FACES):
        img = Image.open(HOME / "samples" / photo).convert("RGB")
        c = crop(img, box)
        name = f"crop{i}_{Path(photo).stem}.png"
        c.save(OUT / name)
        # Read back what was written, so the logits belong to the PNG's pixels exactly.
        x = np.asarray(Image.open(OUT / name).convert("RGB"), np.float32)
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        logits = session.run(None, {"input": x})[0][0]
        e = np.exp(logits - logits.max())
        entries.append({
            "crop": name,
            "photo": photo,
            "box": list(box),
            "logits": [float(v) for v in logits],
            "softmax": [float(v) for v in e / e.sum()],
        })
        print(name, np.round(logits, 4))
    doc = {
        "made_by": "bench/liveness/reference.py",
        "model": "npm faceplugin-face-recognition-js@0.0.1 model/fr_liveness.onnx",
        "onnxruntime": ort.__version__,
        "input": "RGB 0-255 NCHW [1,3,128,128], the PNG's pixels",
        "faces": entries,
    }
    (OUT / "reference.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
