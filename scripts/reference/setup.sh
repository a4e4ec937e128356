#!/usr/bin/env bash
# The Python side of scripts/reference/make.py: the real dlib (PyPI dlib-bin) and onnxruntime,
# pinned, in the same virtual environment bench/faces uses (bench/.venv-faces).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
VENV=bench/.venv-faces
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install "dlib-bin==20.0.1.post1" "numpy==2.4.6" "pillow==13.0.0" "onnxruntime==1.32.0"
"$VENV/bin/python" -c "import dlib, onnxruntime; print('dlib', dlib.__version__, 'onnxruntime', onnxruntime.__version__)"
