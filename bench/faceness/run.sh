#!/usr/bin/env bash
# Face-ness study: precision and recall of the detector before and after the face-ness check
# (crates/likeness-face/src/detect/faceness.rs), and the data its constants were chosen on.
# Run bench/faces/setup.sh once first (its venv has PIL and numpy).
#
#   bench/faceness/run.sh            (about 10 minutes on 2 cores)
#
# Photos: the model cache's samples (group photos, t1.jpg, astronaut, textures, a cat, a cup),
# face_recognition 1.3.0's test photos (its PyPI sdist), the other pictures of the scikit-image
# wheel the cache holds (coins, cell, moon, motorcycle, phantom, retina, …), scikit-learn's two
# and insightface's masks and icon, and synthetic seals and buttons (make_synthetic.py); each at
# 0.2, 0.3, 0.5, 1 and 2 times its size. Faces are labelled by eye in faces.json (boxes in the
# photos' own pixels); every other candidate is a non-face.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=bench/.venv-faces/bin/python
OUT=bench/faceness/out
HOME_DIR=${LIKENESS_HOME:-$HOME/.cache/likeness}
mkdir -p "$OUT/photos"
# photos from the packages the model cache already downloaded, and face_recognition's sdist
unzip -o -j -q "$HOME_DIR"/downloads/scikit_image-0.26.0-*.whl 'skimage/data/*.png' 'skimage/data/*.jpg' -d "$OUT/photos"
unzip -o -j -q "$HOME_DIR"/downloads/insightface-2.1-py3-none-any.whl 'insightface/data/images/mask_*' \
    'insightface/gui/assets/app_icon.png' -d "$OUT/photos"
if ls "$HOME_DIR"/downloads/scikit_learn-*.whl >/dev/null 2>&1; then
    unzip -o -j -q "$HOME_DIR"/downloads/scikit_learn-*.whl 'sklearn/datasets/images/*.jpg' -d "$OUT/photos"
else
    "$PY" -m pip download -q --no-deps --only-binary=:all: scikit-learn==1.5.2 -d "$OUT/dl"
    unzip -o -j -q "$OUT"/dl/scikit_learn-*.whl 'sklearn/datasets/images/*.jpg' -d "$OUT/photos"
fi
[ -f "$OUT/dl/face_recognition-1.3.0.tar.gz" ] ||
    "$PY" -m pip download -q --no-deps --no-binary=:all: face-recognition==1.3.0 -d "$OUT/dl"
tar xzf "$OUT/dl/face_recognition-1.3.0.tar.gz" -C "$OUT/dl"
cp "$OUT"/dl/face_recognition-1.3.0/tests/test_images/* "$OUT/photos/"
# the skimage copies of the samples are the cache's own; take the cache's
for f in astronaut brick chelsea coffee grass gravel; do rm -f "$OUT/photos/$f.png"; done
"$PY" bench/faceness/make_synthetic.py "$OUT/synthetic"

cargo build -q --workspace --example faceness_study
target/debug/examples/faceness_study "$OUT/study.csv" 0.2,0.3,0.5,1,2 \
    "$HOME_DIR"/samples/*.jpg "$HOME_DIR"/samples/*.png "$OUT"/photos/* "$OUT"/synthetic/*.png
"$PY" bench/faceness/hog.py "$OUT/hog.csv" 0.2,0.3,0.5,1 \
    "$HOME_DIR"/samples/*.jpg "$HOME_DIR"/samples/*.png "$OUT"/photos/* "$OUT"/synthetic/*.png
"$PY" bench/faceness/analyse.py "$OUT/study.csv" bench/faceness/faces.json | tee bench/faceness/results.md
