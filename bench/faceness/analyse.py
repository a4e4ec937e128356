"""Face-ness study: labels the candidates of faceness_study's CSV with faces.json, derives the
check's constants from them (and compares with those in faceness.rs), validates them leaving
one photo out at a time, and prints precision and recall before and after the check, as
Markdown. Usage: analyse.py STUDY.csv faces.json"""
import csv
import json
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image

CONFIRM = 0.65          # CONFIRM_MIN_SCORE
LARGE = 40.0            # faceness::LARGE_FACE
MIN_FACE = 40           # DEFAULT_MIN_FACE: recall counts faces at least this wide
MAX_PIXELS = 40_000_000  # faceness_study's limit

rows = list(csv.DictReader(open(sys.argv[1])))
truth = json.load(open(sys.argv[2]))
src = Path(__file__).resolve().parents[2] / "crates/likeness-face/src/detect/faceness.rs"
code = src.read_text()


def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


for r in rows:
    r["name"] = Path(r["file"]).name
    r["box"] = [float(r[k]) for k in ("x0", "y0", "x1", "y1")]
    for k in ("scale", "width", "score", "close_up", "non_face_distance"):
        r[k] = float(r[k])
    r["before"], r["after"] = r["kept_before"] == "1", r["kept_after"] == "1"
    r["e"] = np.array([float(v) for v in r["embedding"].split()])
    matches = [i for i, t in enumerate(truth.get(r["name"], [])) if iou(r["box"], t) >= 0.3]
    r["face"] = matches[0] if matches else None

faces = [r for r in rows if r["face"] is not None]
nonfaces = [r for r in rows if r["face"] is None]
print(f"# Face-ness study\n\n{len(rows)} candidates before the close-up confirmation: {len(faces)} faces, "
      f"{len(nonfaces)} non-faces, from {len(set(r['file'] for r in rows))} photos.\n")

# the constants, derived again from the data
proto = np.mean([r["e"] for r in nonfaces], 0)
numbers = re.search(r"NON_FACE_EMBEDDING: \[f32; 128\] = \[(.*?)\];", code, re.S).group(1)
coded = np.array([float(v) for v in numbers.replace("\n", " ").split(",") if v.strip()])
print(f"- NON_FACE_EMBEDDING: the mean of the {len(nonfaces)} non-face embeddings; largest difference "
      f"from the one in faceness.rs {np.abs(coded - proto).max():.5f}.")


def needed(r, extra):
    return CONFIRM + (extra if r["width"] >= LARGE else 0.0)


def dist(r, p):
    return float(np.linalg.norm(r["e"] - p))


conf_f = [r for r in faces if r["close_up"] >= CONFIRM]
conf_n = [r for r in nonfaces if r["close_up"] >= CONFIRM]
dmin_face = min(dist(r, proto) for r in conf_f)
surer = [r for r in conf_n if r["close_up"] >= needed(r, 0.10)]
dmax_surer = max(dist(r, proto) for r in surer)
print(f"- MIN_NON_FACE_DISTANCE: nearest confirmed face {dmin_face:.3f}, farthest non-face that passes the surer "
      f"close-up {dmax_surer:.3f}; midpoint {(dmin_face + dmax_surer) / 2:.3f}.")
coded_min = float(re.search(r"MIN_NON_FACE_DISTANCE: f32 = ([0-9.]+)", code).group(1))
passing = [r for r in conf_n if dist(r, proto) >= coded_min and r["width"] >= LARGE]
large_faces = [r for r in conf_f if r["width"] >= LARGE]
print(f"- LARGE_FACE_EXTRA_SCORE: the weakest face of {LARGE:.0f} px or more scored {min(r['close_up'] for r in large_faces):.3f} "
      f"close up; the best non-face of that size the embedding check lets through "
      f"{max(r['close_up'] for r in passing):.3f}.\n")

# leave one photo out: mean and distance threshold from the other photos
lost, kept = [], []
for name in sorted(set(r["name"] for r in rows)):
    others_n = [r for r in nonfaces if r["name"] != name]
    p = np.mean([r["e"] for r in others_n], 0)
    of = [r for r in conf_f if r["name"] != name]
    on = [r for r in conf_n if r["name"] != name and r["close_up"] >= needed(r, 0.10)]
    t = (min(dist(r, p) for r in of) + max(dist(r, p) for r in on)) / 2
    for r in rows:
        if r["name"] != name or r["close_up"] < CONFIRM:
            continue
        passes = r["close_up"] >= needed(r, 0.10) and dist(r, p) >= t
        if r["face"] is not None and not passes:
            lost.append(r)
        if r["face"] is None and passes:
            kept.append(r)
def which(rs):
    return ", ".join(sorted(set(f"{r['name']} x{r['scale']:g}" for r in rs))) or "none"


print(f"Leaving one photo out at a time (mean and threshold from the others): {len(lost)} confirmed face(s) lost "
      f"({which(lost)}), {len(kept)} non-face(s) kept ({which(kept)}).\n")
dn_n = sorted(dist(r, proto) for r in nonfaces)
dn_f = sorted(dist(r, proto) for r in conf_f)
print(f"Distances from the non-face mean: non-faces median {dn_n[len(dn_n) // 2]:.3f}; confirmed faces "
      f"{dn_f[0]:.3f} to {dn_f[-1]:.3f}, median {dn_f[len(dn_f) // 2]:.3f}.\n")

# precision and recall of the pipeline, before and after
scales = sorted(set(r["scale"] for r in rows))


def studied_scales(path):
    w, h = Image.open(path).size
    out = []
    for s in scales:
        sw, sh = max(1, round(w * s)), max(1, round(h * s))
        if max(sw, sh) >= 64 and sw * sh <= MAX_PIXELS:
            out.append(s)
    return out


coded_extra = float(re.search(r"LARGE_FACE_EXTRA_SCORE: f32 = ([0-9.]+)", code).group(1))
for r in rows:
    # what faceness.rs as it stands keeps, from the study's measures (the confirmation takes the
    # best close-up view; the check, the candidate's embedding)
    r["checked"] = r["close_up"] >= needed(r, coded_extra) and dist(r, coded) >= coded_min
agree = sum(r["checked"] == r["after"] for r in rows)
print(f"The pipeline as run kept after the check what faceness.rs's constants keep for {agree} of {len(rows)} "
      "candidates (all of them when the run used these constants).\n")

face_photos = {}
for r in rows:
    if r["name"] in truth:
        face_photos[r["name"]] = r["file"]
print("| | faces found (≥ 40 px) | recall | detections | non-faces among them | precision |")
print("|---|---|---|---|---|---|")
for key, label in (("before", "before (close-up ≥ 0.65)"), ("checked", "after (face-ness check)")):
    total = found = 0
    for name, path in face_photos.items():
        for s in studied_scales(path):
            for i, t in enumerate(truth[name]):
                if (t[2] - t[0]) * s < MIN_FACE:
                    continue
                total += 1
                found += any(r[key] and r["face"] == i and r["scale"] == s and r["name"] == name for r in rows)
    dets = [r for r in rows if r[key]]
    fp = [r for r in dets if r["face"] is None]
    print(f"| {label} | {found} / {total} | {found / total:.3f} | {len(dets)} | {len(fp)} | {1 - len(fp) / len(dets):.3f} |")
print()
for key, label in (("before", "before"), ("checked", "after")):
    fp = sorted(set(f"{r['name']} x{r['scale']:g} ({r['width']:.0f} px, close-up {r['close_up']:.2f})" for r in rows if r[key] and r["face"] is None))
    print(f"Non-faces kept {label}: {', '.join(fp) or 'none'}.\n")
missed = sorted(set(f"{r['name']} x{r['scale']:g}" for r in rows if r["before"] and not r["checked"] and r["face"] is not None))
print(f"Faces the check removed: {', '.join(missed) or 'none'}.")

# face_recognition's own detector beside ours, where it ran (hog.py: scales up to 1)
hog_csv = Path(sys.argv[1]).with_name("hog.csv")
if hog_csv.exists():
    hog = list(csv.DictReader(open(hog_csv)))
    hog_scales = sorted(set(float(h["scale"]) for h in hog))
    for h in hog:
        h["name"], h["scale"] = Path(h["file"]).name, float(h["scale"])
        h["box"] = [float(h[k]) for k in ("x0", "y0", "x1", "y1")]
        m = [i for i, t in enumerate(truth.get(h["name"], [])) if iou(h["box"], t) >= 0.3]
        h["face"] = m[0] if m else None
    print(f"\nAt the scales face_recognition's HOG detector (one upsampling, its default; `hog.py`) ran on, "
          f"{', '.join(f'{s:g}' for s in hog_scales)}:\n")
    print("| | faces found (≥ 40 px) | recall | detections | non-faces among them | precision |")
    print("|---|---|---|---|---|---|")
    for label, dets, key in (("Likeness before", rows, "before"), ("Likeness after", rows, "checked"),
                             ("face_recognition (dlib HOG)", hog, None)):
        total = found = 0
        for name, path in face_photos.items():
            for s in studied_scales(path):
                if s not in hog_scales:
                    continue
                for i, t in enumerate(truth[name]):
                    if (t[2] - t[0]) * s < MIN_FACE:
                        continue
                    total += 1
                    found += any((key is None or r[key]) and r["face"] == i and r["scale"] == s and r["name"] == name
                                 for r in dets)
        kept = [r for r in dets if (key is None or r[key]) and r["scale"] in hog_scales]
        fp = [r for r in kept if r["face"] is None]
        print(f"| {label} | {found} / {total} | {found / total:.3f} | {len(kept)} | {len(fp)} | "
              f"{1 - len(fp) / len(kept):.3f} |")
    fp = sorted(set(f"{h['name']} x{h['scale']:g}" for h in hog if h["face"] is None))
    print(f"\nNon-faces face_recognition reports: {', '.join(fp) or 'none'}.")
