#!/usr/bin/env python3
"""Calibration of the passive liveness check on the faces we have, and attack stand-ins.

There is no labelled presentation-attack data set in the package registries. So:

1. real faces: every face of the model cache's photos (face-api's sample1-6.jpg, insightface's
   t1.jpg, scikit-image's astronaut.png), each photo also at other sizes (0.5x, 0.3x), darker
   (gamma 1.8, x0.6), brighter (x1.5), mirrored, and re-framed tighter around each face (a
   selfie-like framing). These are photographs of live people: every face counts as "live",
   so a "spoof" verdict on them is a false reject. (They are web photos, not webcam frames:
   the model was made for phone/webcam frames.)
2. attack stand-ins, made from the same photos by re-imaging them the way a print or a screen
   held to a camera would look: `screen` (resampled through an RGB sub-pixel grid at a
   non-integer pitch: moire; emissive tint), `print` (gamut compression, lifted blacks, warm
   paper, halftone grain), `glare` (print + a specular highlight), `sheet` (print held at an
   angle: perspective warp with a white margin, in front of a background), `jpeg` (downscaled,
   re-encoded at quality 12, upscaled: a re-captured, recompressed copy), `phone` (the photo
   inside a black bezel, on a background: the border of the device in view). They are
   imitations made in software, not photographs of real attacks: how the detector treats them
   says something about what it keys on, not how it fares against real attackers.

Every image is written under bench/liveness/out/, judged by our own command
(`likeness liveness --json`, the Rust network), and the table printed and saved as
bench/liveness/results.json.

Run: bench/liveness/setup.sh; cargo build -p likeness;
     bench/.venv-liveness/bin/python bench/liveness/calibrate.py
"""
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parents[2]
HOME = Path(os.environ.get("LIKENESS_HOME", Path.home() / ".cache" / "likeness"))
OUT = ROOT / "bench/liveness/out"
LIKENESS = os.environ.get("LIKENESS_BIN", str(ROOT / "target/debug/likeness"))
PHOTOS = ["sample1.jpg", "sample2.jpg", "sample3.jpg", "sample4.jpg", "sample5.jpg",
          "sample6.jpg", "t1.jpg", "astronaut.png"]
BACKGROUNDS = ["brick.png", "gravel.png", "coffee.png"]
THRESHOLDS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
MAX_SIDE = 1280
rng = np.random.default_rng(2026)


def load(name):
    img = Image.open(HOME / "samples" / name).convert("RGB")
    s = MAX_SIDE / max(img.size)
    if s < 1:
        img = img.resize((round(img.width * s), round(img.height * s)), Image.LANCZOS)
    return img


def arr(img):
    return np.asarray(img, np.float32)


def img(a):
    return Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8))


# ---- real variants -------------------------------------------------------------------------

def scaled(im, f):
    return im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.LANCZOS)


def dark(im):
    return img(255 * 0.6 * (arr(im) / 255) ** 1.8)


def bright(im):
    return img(arr(im) * 1.5)


def mirrored(im):
    return im.transpose(Image.FLIP_LEFT_RIGHT)


def reframed(im, box, scale=3.2, side=640):
    x0, y0, x1, y1 = box
    cx, cy, s = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * scale
    return im.crop((int(cx - s / 2), int(cy - s / 2), int(cx + s / 2), int(cy + s / 2))).resize(
        (side, side), Image.LANCZOS)


# ---- attack stand-ins ----------------------------------------------------------------------

def screen(im):
    """The photo shown on an LCD (R, G, B sub-pixel stripes, dark gaps between pixel rows),
    photographed at a pitch that does not divide the grid: moire, plus an emissive blue tint."""
    small = arr(scaled(im, 1 / 2.5))
    a = np.repeat(np.repeat(small, 3, 0), 3, 1)
    mask = np.full(a.shape, 0.08, np.float32)
    for c in range(3):
        mask[:, c::3, c] = 1.0
    mask[2::3] *= 0.35
    a = a * mask * 2.4
    a = a * np.array([0.92, 0.98, 1.12]) + 12
    shown = img(a).filter(ImageFilter.GaussianBlur(0.6))
    return shown.resize((round(im.width * 0.93), round(im.height * 0.93)), Image.BILINEAR)


def print_(im):
    """Gamut compression of a print: contrast and saturation down, blacks lifted, warm paper,
    halftone-like grain."""
    a = arr(im)
    grey = a.mean(2, keepdims=True)
    a = grey + (a - grey) * 0.65
    a = 38 + a * 0.72
    a = a * np.array([1.04, 1.0, 0.9])
    a = a + rng.normal(0, 6, a.shape[:2])[..., None]
    return img(a)


def glare(im):
    """A print with a specular highlight over part of the face region."""
    p = arr(print_(im))
    h, w = p.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = w * rng.uniform(0.3, 0.7), h * rng.uniform(0.25, 0.6)
    r = min(w, h) * 0.22
    g = np.exp(-(((xx - cx) / (1.6 * r)) ** 2 + ((yy - cy) / r) ** 2))
    return img(p + 210 * g[..., None])


def background(name, size):
    bg = Image.open(HOME / "samples" / name).convert("RGB")
    return bg.resize(size, Image.BILINEAR)


def sheet(im, bg_name):
    """A print with a white margin, held at an angle in front of a background."""
    p = print_(im)
    m = round(0.06 * max(p.size))
    paper = Image.new("RGB", (p.width + 2 * m, p.height + 2 * m), (236, 232, 220))
    paper.paste(p, (m, m))
    W, H = paper.size
    canvas = background(bg_name, (round(W * 1.15), round(H * 1.15)))
    # Perspective: the right edge recedes (turned ~30 degrees), slight tilt.
    src = [(0, 0), (W, 0), (W, H), (0, H)]
    dst = [(0.06 * W, 0.04 * H), (0.86 * W, 0.13 * H), (0.86 * W, 0.9 * H), (0.06 * W, 1.02 * H)]
    coeffs = perspective_coeffs(dst, src)
    warped = paper.transform(canvas.size, Image.PERSPECTIVE, coeffs, Image.BILINEAR)
    mask = Image.new("L", paper.size, 255).transform(canvas.size, Image.PERSPECTIVE, coeffs,
                                                      Image.BILINEAR)
    canvas.paste(warped, (0, 0), mask)
    return canvas


def perspective_coeffs(dst, src):
    """PIL's PERSPECTIVE coefficients mapping output points `dst` to input points `src`."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return np.linalg.solve(np.array(rows, float), np.array(rhs, float)).tolist()


def jpeg(im):
    b = io.BytesIO()
    scaled(im, 0.5).save(b, "JPEG", quality=12)
    return Image.open(b).convert("RGB").resize(im.size, Image.BILINEAR)


def phone(im, bg_name):
    """The photo on a phone held up: a black bezel with rounded corners, on a background."""
    shown = screen(im)
    b = round(0.05 * max(shown.size))
    dev = Image.new("RGB", (shown.width + 2 * b, shown.height + 4 * b), (0, 0, 0))
    dev.paste(shown, (b, 2 * b))
    mask = Image.new("L", dev.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, dev.width - 1, dev.height - 1), radius=3 * b,
                                           fill=255)
    canvas = background(bg_name, (round(dev.width * 1.2), round(dev.height * 1.2)))
    canvas.paste(dev, ((canvas.width - dev.width) // 2, (canvas.height - dev.height) // 2), mask)
    return canvas


# ---- running ---------------------------------------------------------------------------------

def detect_boxes(path):
    out = subprocess.run([LIKENESS, "detect", "--json", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return [f["box"] for f in json.loads(out)["faces"]]


def judge(paths):
    """likeness liveness --json over `paths`, in chunks; scores per image."""
    scores = {}
    for i in range(0, len(paths), 16):
        chunk = [str(p) for p in paths[i:i + 16]]
        out = subprocess.run([LIKENESS, "liveness", "--json", *chunk], check=True,
                             capture_output=True, text=True).stdout
        for r in json.loads(out):
            scores[r["file"]] = [f["score"] for f in r["faces"]]
    return scores


def main():
    if not Path(LIKENESS).exists():
        sys.exit(f"{LIKENESS} is missing: cargo build -p likeness")
    made = {}  # kind -> list of paths

    def save(kind, name, im):
        d = OUT / kind
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"{name}.png"
        im.save(p)
        made.setdefault(kind, []).append(p)

    for k, name in enumerate(PHOTOS):
        im = load(name)
        stem = Path(name).stem
        save("real/original", stem, im)
        save("real/half", stem, scaled(im, 0.5))
        save("real/third", stem, scaled(im, 0.3))
        save("real/dark", stem, dark(im))
        save("real/bright", stem, bright(im))
        save("real/mirrored", stem, mirrored(im))
        for j, box in enumerate(detect_boxes(OUT / "real/original" / f"{stem}.png")):
            save("real/reframed", f"{stem}_{j}", reframed(im, box))
        bg = BACKGROUNDS[k % len(BACKGROUNDS)]
        save("attack/screen", stem, screen(im))
        save("attack/print", stem, print_(im))
        save("attack/glare", stem, glare(im))
        save("attack/sheet", stem, sheet(im, bg))
        save("attack/jpeg", stem, jpeg(im))
        save("attack/phone", stem, phone(im, bg))
        print("made", name, file=sys.stderr)

    rows = []
    for kind, paths in made.items():
        scores = judge(paths)
        flat = [s for p in paths for s in scores.get(str(p), [])]
        rows.append({"kind": kind, "images": len(paths), "faces": len(flat),
                     "scores": [round(s, 4) for s in flat]})
        print(kind, len(paths), len(flat), file=sys.stderr)

    def below(scores, t):
        return sum(s < t for s in scores)

    real = [s for r in rows if r["kind"].startswith("real/") for s in r["scores"]]
    lines = ["| set | images | faces | median score | " +
             " | ".join(f"spoof at {t}" for t in THRESHOLDS) + " |",
             "|---|---|---|---|" + "---|" * len(THRESHOLDS)]
    for r in rows + [{"kind": "real (all)", "images": sum(x["images"] for x in rows
                                                          if x["kind"].startswith("real/")),
                      "faces": len(real), "scores": real}]:
        s = r["scores"]
        med = f"{np.median(s):.3f}" if s else "-"
        cells = " | ".join(f"{below(s, t)} ({100 * below(s, t) / max(1, len(s)):.0f}%)"
                           for t in THRESHOLDS)
        lines.append(f"| {r['kind']} | {r['images']} | {r['faces']} | {med} | {cells} |")
    table = "\n".join(lines)
    print(table)
    (ROOT / "bench/liveness/results.json").write_text(json.dumps(
        {"made_by": "bench/liveness/calibrate.py", "thresholds": THRESHOLDS, "sets": rows,
         "table_md": table}, indent=1) + "\n")


if __name__ == "__main__":
    main()
