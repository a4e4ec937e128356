#!/usr/bin/env bash
# Creates bench/.venv-faces with face_recognition on the real dlib, reproducibly and without
# compiling anything: `dlib-bin` is a prebuilt wheel of dlib, but `face-recognition` declares a
# dependency on the source package `dlib` (a ~10-minute CMake build), so face-recognition and its
# models are installed with --no-deps and their remaining pure-Python/binary deps explicitly.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
VENV=bench/.venv-faces

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/pip"
"$PIP" install "dlib-bin==20.0.1.post1" "numpy==2.4.6" "pillow==13.0.0" "click==8.3.1"
"$PIP" install --no-deps "face-recognition==1.3.0" "face-recognition-models==0.3.0"
"$VENV/bin/python" -c "import dlib, face_recognition; print('dlib', dlib.__version__, 'face_recognition', face_recognition.__version__, 'DLIB_USE_BLAS', getattr(dlib, 'DLIB_USE_BLAS', '?'))"
