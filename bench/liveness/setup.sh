#!/usr/bin/env bash
# The Python side of the liveness work: onnxruntime (the reference the Rust network is checked
# against), numpy and Pillow (crops and attack stand-ins), in their own git-ignored venv
# bench/.venv-liveness. Prebuilt wheels from PyPI only; about 60 MB.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x bench/.venv-liveness/bin/python ] || python3 -m venv bench/.venv-liveness
bench/.venv-liveness/bin/pip install -q "onnxruntime==1.32.0" "numpy>=1.26,<3" "pillow>=10,<13"
bench/.venv-liveness/bin/python -c "import onnxruntime; print('onnxruntime', onnxruntime.__version__)"
