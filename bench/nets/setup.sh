#!/usr/bin/env bash
# Prepares the references of the network benchmark: PyTorch (bench/.venv, made by
# bench/style/setup.sh), dlib (bench/.venv-faces, made by bench/faces/setup.sh) and onnxruntime,
# added to bench/.venv-faces (a prebuilt wheel from PyPI; it shares that venv's numpy).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x bench/.venv/bin/python ] || bench/style/setup.sh
[ -x bench/.venv-faces/bin/python ] || bench/faces/setup.sh
bench/.venv-faces/bin/pip install "onnxruntime==1.32.0"
bench/.venv-faces/bin/python -c "import onnxruntime; print('onnxruntime', onnxruntime.__version__)"
