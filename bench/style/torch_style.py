"""The PyTorch half of the style-transfer benchmark (bench/style/run.sh runs it beside likeness).

    torch_style.py time  SIZE REPS  OUT_DIR
    torch_style.py lbfgs SIZE ITERS OUT_DIR

Mirrors likeness's defaults exactly (crates/likeness-style: loss.rs, objective.rs, transfer.rs):
the cache's VGG-16 weights (Keras/Caffe ImageNet conv base, Caffe-BGR input: B, G, R in 0-255
minus the Caffe mean), 3x3 convs with padding 1, ReLU, 2x2 max pooling;
J = a * 1/2 ||a_C - a_G||^2 at relu4_2 + b * sum_l 0.2 * ||(Gram_G - Gram_S) / (2 C H W)||^2_F
over relu1_1..relu5_1, with a = 1, b = 1e4 and plain (unnormalised) Gram sums. The images are
the PNGs likeness's half wrote (content_SIZE.png, style_SIZE.png), so both see the same pixels.
G starts at the content image.

time: seconds of one J + dJ/dG evaluation at the content image (one warm-up, REPS timed).
lbfgs: torch.optim.LBFGS(history 100, strong Wolfe, torch's tolerances) for ITERS iterations.
Peak memory: the process's ru_maxrss.
"""

import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.numpy import load_file

torch.set_num_threads(2)

# Caffe's ImageNet mean in B, G, R order (likeness_nn::nets::vgg::CAFFE_BGR_MEAN).
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
# torchvision's indices of VGG-16's 13 convs in `features`; None marks a 2x2 max pool.
VGG16 = [0, 2, None, 5, 7, None, 10, 12, 14, None, 17, 19, 21, None, 24, 26, 28]
CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
STYLE_LAMBDA = 0.2
ALPHA, BETA = 1.0, 1e4


def cache_home():
    return os.environ.get("LIKENESS_HOME") or os.path.expanduser("~/.cache/likeness")


class Vgg16(torch.nn.Module):
    def __init__(self, weights):
        super().__init__()
        self.convs = torch.nn.ModuleList()
        for i in [i for i in VGG16 if i is not None]:
            w = torch.from_numpy(weights[f"features.{i}.weight"])
            conv = torch.nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1)
            conv.weight.data.copy_(w)
            conv.bias.data.copy_(torch.from_numpy(weights[f"features.{i}.bias"]))
            self.convs.append(conv)
        self.requires_grad_(False)

    def forward(self, x, wanted):
        """Activations at the `wanted` relu names, computing only up to the deepest."""
        out, block, n, convs = {}, 1, 1, iter(self.convs)
        for item in VGG16:
            if len(out) == len(wanted):
                break
            if item is None:
                x = F.max_pool2d(x, 2)
                block, n = block + 1, 1
                continue
            x = F.relu(next(convs)(x))
            name = f"relu{block}_{n}"
            if name in wanted:
                out[name] = x
            n += 1
        return [out[w] for w in wanted]


def to_tensor(path):
    """Caffe-BGR input [1, 3, H, W] of an image, as likeness's InputConvention::CaffeBgr."""
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    bgr = rgb[:, :, ::-1] - np.array(CAFFE_BGR_MEAN, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1)))[None]


def gram(a):
    n, c, h, w = a.shape
    a = a.reshape(n, c, h * w)
    return a @ a.transpose(1, 2)


class Objective:
    def __init__(self, size, out_dir):
        weights = load_file(os.path.join(cache_home(), "models", "vgg16.safetensors"))
        self.vgg = Vgg16(weights)
        self.content = to_tensor(os.path.join(out_dir, f"content_{size}.png"))
        style = to_tensor(os.path.join(out_dir, f"style_{size}.png"))
        self.layers = [CONTENT_LAYER] + STYLE_LAYERS
        with torch.no_grad():
            (self.content_target,) = self.vgg(self.content, [CONTENT_LAYER])
            area = self.content.shape[2] * self.content.shape[3] / (style.shape[2] * style.shape[3])
            self.style_targets = [gram(a) * area for a in self.vgg(style, STYLE_LAYERS)]

    def terms(self, g):
        acts = self.vgg(g, self.layers)
        content = 0.5 * (acts[0] - self.content_target).square().sum()
        style = 0.0
        for a, target in zip(acts[1:], self.style_targets):
            _, c, h, w = a.shape
            style = style + STYLE_LAMBDA * ((gram(a) - target) / (2.0 * c * h * w)).square().sum()
        return ALPHA * content + BETA * style, content, style

    def evaluate(self, x):
        """J's terms and dJ/dx at x, like StyleObjective::evaluate (terms read back)."""
        g = x.detach().clone().requires_grad_(True)
        total, content, style = self.terms(g)
        total.backward()
        return total.item(), content.item(), style.item(), g.grad


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_time(size, reps, out_dir):
    obj = Objective(size, out_dir)
    total, content, style, _ = obj.evaluate(obj.content)  # warm-up
    seconds = []
    cpu_start = time.process_time()
    for _ in range(reps):
        t = time.perf_counter()
        obj.evaluate(obj.content)
        seconds.append(time.perf_counter() - t)
    result = {
        "impl": "pytorch",
        "torch": torch.__version__,
        "size": size,
        "seconds": seconds,
        "median_s": float(np.median(seconds)),
        "cpu_s_per_eval": (time.process_time() - cpu_start) / reps,
        "loss": total,
        "content": content,
        "style": style,
        "peak_rss_mib": peak_rss_mib(),
    }
    with open(os.path.join(out_dir, f"pytorch_time_{size}.json"), "w") as f:
        json.dump(result, f)
    print(json.dumps(result))


def run_lbfgs(size, iterations, out_dir):
    obj = Objective(size, out_dir)
    x = obj.content.clone().requires_grad_(True)
    # likeness's LbfgsConfig::default(): m = 100, strong Wolfe, lr 1, torch's tolerances, at
    # most 25 evaluations per line search; no cap on the total number of evaluations.
    opt = torch.optim.LBFGS(
        [x],
        lr=1.0,
        max_iter=iterations,
        max_eval=iterations * 25,
        tolerance_grad=1e-7,
        tolerance_change=1e-9,
        history_size=100,
        line_search_fn="strong_wolfe",
    )
    # Every evaluation, tagged with the iteration it belongs to (torch's state n_iter; 0 is the
    # start). The loss of iteration k is the lowest evaluated within it: strong Wolfe accepts
    # the lowest point of its bracket.
    log = []
    start = time.perf_counter()

    def closure():
        opt.zero_grad()
        total, _, _ = obj.terms(x)
        total.backward()
        n_iter = opt.state[x].get("n_iter", 0)
        log.append((n_iter, total.item(), time.perf_counter() - start))
        return total

    opt.step(closure)
    elapsed = time.perf_counter() - start
    per_iter = {}
    evals = 0
    rows = []
    for k, (n_iter, loss, t) in enumerate(log):
        evals = k + 1
        if n_iter == 0:
            continue
        best = per_iter.get(n_iter)
        per_iter[n_iter] = (min(loss, best[0]) if best else loss, evals, t)
    for n_iter in sorted(per_iter):
        loss, evals, t = per_iter[n_iter]
        rows.append(f"{n_iter},{loss!r},{evals},{t:.3f}")
    with open(os.path.join(out_dir, f"pytorch_lbfgs_{size}.csv"), "w") as f:
        f.write("iteration,loss,evaluations,seconds\n" + "\n".join(rows) + "\n")
    last = max(per_iter)
    result = {
        "impl": "pytorch",
        "torch": torch.__version__,
        "size": size,
        "iterations": last,
        "evaluations": len(log),
        "final_loss": per_iter[last][0],
        "seconds": elapsed,
        "peak_rss_mib": peak_rss_mib(),
    }
    with open(os.path.join(out_dir, f"pytorch_lbfgs_{size}.json"), "w") as f:
        json.dump(result, f)
    print(json.dumps(result))


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("time", "lbfgs"):
        sys.exit("usage: torch_style.py time|lbfgs SIZE N OUT_DIR")
    mode, size, n, out_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    (run_time if mode == "time" else run_lbfgs)(size, n, out_dir)


if __name__ == "__main__":
    main()
