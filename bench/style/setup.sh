#!/usr/bin/env bash
# Creates bench/.venv with a CPU-usable PyTorch for the style benchmark, reproducibly.
#
# PyPI's only x86-64 Linux torch wheel is the CUDA build, and a plain `pip install torch` pulls
# ~4 GB of CUDA packages plus triton. PyTorch's CPU-only wheels live on its own index, which this
# project's machines cannot reach. So: the torch wheel with --no-deps, its pure-Python
# dependencies, and of the CUDA packages only those whose shared libraries libtorch_cpu.so /
# libtorch_cuda.so / libtorch_python.so name as NEEDED (without them `import torch` fails on
# dlopen, even on CPU). triton and cuda-bindings (imported lazily, GPU only) are left out.
# The result is ~4.5 GB on disk; nothing here uses a GPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
VENV=bench/.venv
TORCH=2.15.0

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/pip"
"$PIP" install --no-deps "torch==$TORCH"
# torch's pure-Python requirements, and the benchmark's own (safetensors, numpy, pillow, matplotlib).
"$PIP" install "setuptools==84.2.1" "typing-extensions==4.16.0" "filelock==4.2.11" \
    "sympy==1.14.0" "mpmath==1.3.0" "networkx==3.6.1" "jinja2==3.1.6" "fsspec==2026.9.0" \
    "numpy==2.4.6" "safetensors==0.8.0" "pillow==13.0.0" "matplotlib==3.11.2"
# The CUDA shared libraries torch's binaries link against (versions as torch 2.15.0 pins them).
"$PIP" install "cuda-toolkit[cublas,cudart,cufft,cufile,cupti,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.2.2" \
    "nvidia-cudnn-cu13==9.26.0.51" "nvidia-cusparselt-cu13==0.8.1" "nvidia-nccl-cu13==2.30.7" \
    "nvidia-nvshmem-cu13==3.7.2"
"$VENV/bin/python" -c "import torch; torch.set_num_threads(2); print('torch', torch.__version__, 'CPU check:', float(torch.randn(2).sum()))"
