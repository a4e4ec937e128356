"""face_recognition's side of the faces benchmark (bench/faces/run.sh runs it beside likeness).

Per photo, the median of REPS timed runs after one warm-up, with dlib called exactly as
face_recognition 1.3.0 calls it:
  detect     face_locations(img, number_of_times_to_upsample=1): the HOG detector, 1 upsample
  landmarks  the 5-point pose predictor on each box (face_landmarks(model="small"))
  encode     compute_face_descriptor(img, shape, num_jitters=1) per face (face_encodings);
             dlib cuts the 150x150 chip inside this call, so it is align + encode
  total      face_encodings(img, face_locations(img, 1)), the public API end to end
Photo decoding (load_image_file) is left out, as on the Rust side.

    python face_recognition_bench.py REPS OUT.json PHOTO...
"""

import json
import os
import statistics
import sys
import time

import dlib
import face_recognition
import face_recognition_models
from face_recognition import api


def timed(f):
    start = time.perf_counter()
    out = f()
    return out, time.perf_counter() - start


def main():
    reps, out, photos = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    detector = api.face_detector  # dlib.get_frontal_face_detector()
    predictor = api.pose_predictor_5_point
    encoder = api.face_encoder
    results = []
    for path in photos:
        img = face_recognition.load_image_file(path)

        def stages():
            rects, t_detect = timed(lambda: detector(img, 1))
            shapes, t_landmarks = timed(lambda: [predictor(img, r) for r in rects])
            descriptors, t_encode = timed(
                lambda: [encoder.compute_face_descriptor(img, s, 1) for s in shapes]
            )
            return rects, (t_detect, t_landmarks, t_encode)

        def end_to_end():
            return face_recognition.face_encodings(
                img, face_recognition.face_locations(img, 1), num_jitters=1, model="small"
            )

        rects, _ = stages()  # warm-up
        end_to_end()
        detect, landmarks, encode, total = [], [], [], []
        for _ in range(reps):
            again, (d, l, e) = stages()
            if len(again) != len(rects):
                raise SystemExit(f"{path}: face count changed between runs")
            detect.append(d)
            landmarks.append(l)
            encode.append(e)
            encodings, t = timed(end_to_end)
            total.append(t)
        n = len(rects)
        record = {
            "photo": os.path.basename(path),
            "width": img.shape[1],
            "height": img.shape[0],
            "faces": n,
            # dlib's inclusive rectangles as x0, y0, x1, y1
            "boxes": [{"bbox": [r.left(), r.top(), r.right(), r.bottom()]} for r in rects],
            "detect_s": statistics.median(detect),
            "landmarks_s": statistics.median(landmarks),
            "encode_s": statistics.median(encode),
            "total_s": statistics.median(total),
            "encode_per_face_s": statistics.median(encode) / n if n else None,
        }
        print("dlib", json.dumps(record), file=sys.stderr)
        results.append(record)
    doc = {
        "implementation": "face_recognition",
        "face_recognition": face_recognition.__version__,
        "face_recognition_models": face_recognition_models.__version__,
        "dlib": dlib.__version__,
        "dlib_use_blas": bool(getattr(dlib, "DLIB_USE_BLAS", False)),
        "dlib_use_avx": bool(getattr(dlib, "USE_AVX_INSTRUCTIONS", False)),
        "reps": reps,
        "photos": results,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=2)


if __name__ == "__main__":
    main()
