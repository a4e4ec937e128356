"""Combines bench/faces/out/*.json into results.json and a markdown table (results.md, also
printed). Standard library only.

    python collate.py OUT_DIR DEST_DIR

Ratios are likeness / dlib (below 1: likeness is faster). Per-face figures divide a photo's
stage time by the faces each side found there; the "all photos" row divides summed times by
summed faces. dlib's encode (compute_face_descriptor) cuts the chip itself, so likeness's
encode is compared as align + embed: "1 by 1" embeds each chip alone (as dlib does), "batch"
is the pipeline's one batched forward over the photo's chips.
"""

import json
import os
import sys


def iou(a, b):
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    return inter / (area(a) + area(b) - inter) if inter > 0 else 0.0


def matched(ours, theirs, threshold=0.3):
    """Faces both found: greedy one-to-one matching of boxes at IoU >= threshold."""
    free = list(range(len(theirs)))
    count = 0
    for o in ours:
        best = max(free, key=lambda j: iou(o["bbox"], theirs[j]["bbox"]), default=None)
        if best is not None and iou(o["bbox"], theirs[best]["bbox"]) >= threshold:
            free.remove(best)
            count += 1
    return count


def ms(s):
    return "–" if s is None else f"{1000 * s:.0f}"


def ratio(a, b):
    return "–" if a is None or not b else f"{a / b:.2f}×"


def per_face(l):
    """likeness: (landmarks, encode 1 by 1, encode batch) per face, seconds."""
    n = l["faces"]
    if not n:
        return None, None, None
    align = l["align_s"] / n
    return (
        l["landmarks_s"] / n,
        align + l["encode_per_face_single_s"],
        align + l["encode_s"] / n,
    )


def table(lk, fr, label):
    rows = [
        f"likeness ({label}) vs face_recognition (dlib), milliseconds, medians; ratio = likeness / dlib",
        "",
        "| photo | faces dlib / ours / both | detect dlib | detect ours | ratio "
        "| landmarks/face dlib | ours | ratio | encode/face dlib | ours 1 by 1 | ratio "
        "| ours batch | ratio | photo end-to-end dlib | ours | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    tot = dict(fd=0, fl=0, fe=0, ft=0, ld=0, ll=0, l1=0, lb=0, lt=0, nf=0, nl=0, nb=0)
    for l, d in zip(lk["photos"], fr["photos"]):
        assert l["photo"] == d["photo"], (l["photo"], d["photo"])
        nd, nl = d["faces"], l["faces"]
        both = matched(l["boxes"], d["boxes"])
        d_lm = d["landmarks_s"] / nd if nd else None
        d_enc = d["encode_per_face_s"]
        l_lm, l_1, l_b = per_face(l)
        rows.append(
            f"| {l['photo']} ({l['width']}×{l['height']}) | {nd} / {nl} / {both} "
            f"| {ms(d['detect_s'])} | {ms(l['detect_s'])} | {ratio(l['detect_s'], d['detect_s'])} "
            f"| {ms(d_lm)} | {ms(l_lm)} | {ratio(l_lm, d_lm)} "
            f"| {ms(d_enc)} | {ms(l_1)} | {ratio(l_1, d_enc)} | {ms(l_b)} | {ratio(l_b, d_enc)} "
            f"| {ms(d['total_s'])} | {ms(l['total_s'])} | {ratio(l['total_s'], d['total_s'])} |"
        )
        tot["fd"] += d["detect_s"]
        tot["fl"] += d["landmarks_s"]
        tot["fe"] += d["encode_s"]
        tot["ft"] += d["total_s"]
        tot["ld"] += l["detect_s"]
        tot["ll"] += l["landmarks_s"]
        tot["l1"] += l["align_s"] + (l["encode_per_face_single_s"] or 0) * nl
        tot["lb"] += l["align_s"] + l["encode_s"]
        tot["lt"] += l["total_s"]
        tot["nf"] += nd
        tot["nl"] += nl
        tot["nb"] += both
    t = tot
    n = len(lk["photos"])
    d_lm, d_enc = t["fl"] / t["nf"], t["fe"] / t["nf"]
    l_lm, l_1, l_b = t["ll"] / t["nl"], t["l1"] / t["nl"], t["lb"] / t["nl"]
    rows.append(
        f"| **all {n} photos** (detect, end-to-end: mean per photo) | {t['nf']} / {t['nl']} / {t['nb']} "
        f"| {ms(t['fd'] / n)} | {ms(t['ld'] / n)} | {ratio(t['ld'], t['fd'])} "
        f"| {ms(d_lm)} | {ms(l_lm)} | {ratio(l_lm, d_lm)} "
        f"| {ms(d_enc)} | {ms(l_1)} | {ratio(l_1, d_enc)} | {ms(l_b)} | {ratio(l_b, d_enc)} "
        f"| {ms(t['ft'] / n)} | {ms(t['lt'] / n)} | {ratio(t['lt'], t['ft'])} |"
    )
    share = t["ld"] / t["lt"]
    whole = sum(l["detect_whole_photo_only_s"] for l in lk["photos"]) / n
    passes = ", ".join(f"{l['photo']} {l['detect_passes']}" for l in lk["photos"])
    rows += [
        "",
        f"likeness's detect is {100 * share:.0f}% of its end-to-end time. BlazeFace passes per "
        f"photo (2 whole-photo + tiles): {passes}; the 2 whole-photo passes alone take "
        f"{ms(whole)} ms per photo on average.",
    ]
    summary = {
        "detect_ratio": t["ld"] / t["fd"],
        "landmarks_per_face_ratio": l_lm / d_lm,
        "encode_per_face_ratio_1by1": l_1 / d_enc,
        "encode_per_face_ratio_batch": l_b / d_enc,
        "end_to_end_ratio": t["lt"] / t["ft"],
        "dlib_encode_per_face_s": d_enc,
        "likeness_encode_per_face_1by1_s": l_1,
        "likeness_encode_per_face_batch_s": l_b,
        "likeness_detect_share": share,
        "faces_dlib": t["nf"],
        "faces_likeness": t["nl"],
        "faces_both": t["nb"],
    }
    return "\n".join(rows), summary


def main():
    src, dest = sys.argv[1], sys.argv[2]
    load = lambda name: json.load(open(os.path.join(src, name)))
    fr = load("face_recognition.json")
    runs = [("likeness.json", "default threads"), ("likeness_1thread.json", "1 thread")]
    out, text = {"face_recognition": fr, "likeness": {}, "summary": {}}, []
    for name, label in runs:
        if not os.path.exists(os.path.join(src, name)):
            continue
        lk = load(name)
        md, summary = table(lk, fr, label)
        out["likeness"][label] = lk
        out["summary"][label] = summary
        text.append(md)
    for f in ("uptime_before.txt", "uptime_after.txt"):
        p = os.path.join(src, f)
        if os.path.exists(p):
            out[f[:-4]] = open(p).read().strip()
            text.append(f"{f[:-4]}: " + out[f[:-4]].replace("\n", "; "))
    with open(os.path.join(dest, "results.json"), "w") as f:
        json.dump(out, f, indent=2)
    md = "\n\n".join(text) + "\n"
    with open(os.path.join(dest, "results.md"), "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
