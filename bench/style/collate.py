"""Collates bench/style/out/ into results.json, the two loss curves (CSV) and loss_curve.png,
and prints the README's table of ratios (likeness / PyTorch).

    collate.py OUT_DIR DEST_DIR
"""

import csv
import json
import os
import platform
import shutil
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def curve(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [(int(r["iteration"]), float(r["loss"]), int(r["evaluations"]), float(r["seconds"]))
                for r in csv.DictReader(f)]


def read(path):
    return open(path).read().strip() if os.path.exists(path) else None


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    out, dest = sys.argv[1], sys.argv[2]
    results = {
        "machine": {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "threads": 2},
        "uptime": {name[len("uptime_"):-len(".txt")]: read(os.path.join(out, name))
                   for name in sorted(os.listdir(out)) if name.startswith("uptime_")},
        "time": {},
        "lbfgs": {},
    }
    rows = []
    for size in (256, 512):
        ours = load(os.path.join(out, f"likeness_time_{size}.json"))
        theirs = load(os.path.join(out, f"pytorch_time_{size}.json"))
        if not (ours and theirs):
            continue
        entry = {
            "likeness": ours,
            "pytorch": theirs,
            "ratio_median_s": ours["median_s"] / theirs["median_s"],
            "ratio_min_s": min(ours["seconds"]) / min(theirs["seconds"]),
            "ratio_peak_rss": ours["peak_rss_mib"] / theirs["peak_rss_mib"],
            "loss_rel_diff": abs(ours["loss"] - theirs["loss"]) / abs(theirs["loss"]),
        }
        results["time"][str(size)] = entry
        rows.append((f"s / iteration at {size} px (median)", f"{ours['median_s']:.3f} s",
                     f"{theirs['median_s']:.3f} s", entry["ratio_median_s"]))
    for size in (256, 512):
        entry = results["time"].get(str(size))
        if entry:
            rows.append((f"peak RSS, {size} px process", f"{entry['likeness']['peak_rss_mib']:.0f} MiB",
                         f"{entry['pytorch']['peak_rss_mib']:.0f} MiB", entry["ratio_peak_rss"]))

    ours_curve = curve(os.path.join(out, "likeness_lbfgs_256.csv"))
    theirs_curve = curve(os.path.join(out, "pytorch_lbfgs_256.csv"))
    curves = [(n, c) for n, c in (("likeness", ours_curve), ("pytorch", theirs_curve)) if c]
    for name, c in curves:
        shutil.copyfile(os.path.join(out, f"{name}_lbfgs_256.csv"),
                        os.path.join(dest, f"loss_{name}.csv"))
    if curves:
        results["lbfgs"]["reached"] = {n: c[-1][0] for n, c in curves}
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
        for name, c in curves:
            ax.plot([r[0] for r in c], [r[1] for r in c], label=name)
        ax.set_yscale("log")
        ax.set_xlabel("L-BFGS iteration")
        ax.set_ylabel("J = J_content + 1e4 · J_style")
        ax.set_title("Style transfer, VGG-16, astronaut × gravel, 256 px, from the content image")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(dest, "loss_curve.png"))
    if ours_curve and theirs_curve:
        # Compare at the last iteration both reached (300 when both ran to the end).
        last = min(ours_curve[-1][0], theirs_curve[-1][0])
        ours_at = next(r for r in ours_curve if r[0] == last)
        theirs_at = next(r for r in theirs_curve if r[0] == last)
        results["lbfgs"].update({
            "size": 256,
            "compared_at_iteration": last,
            "likeness": {"loss": ours_at[1], "evaluations": ours_at[2], "seconds": ours_at[3],
                         "summary": load(os.path.join(out, "likeness_lbfgs_256.json"))},
            "pytorch": {"loss": theirs_at[1], "evaluations": theirs_at[2], "seconds": theirs_at[3],
                        "summary": load(os.path.join(out, "pytorch_lbfgs_256.json"))},
            "ratio_loss": ours_at[1] / theirs_at[1],
            "start_loss": results["time"].get("256", {}).get("pytorch", {}).get("loss"),
        })
        rows.append((f"loss after {last} L-BFGS iterations, 256 px", f"{ours_at[1]:.4e}",
                     f"{theirs_at[1]:.4e}", ours_at[1] / theirs_at[1]))
        rows.append((f"evaluations in {last} L-BFGS iterations", str(ours_at[2]), str(theirs_at[2]),
                     ours_at[2] / theirs_at[2]))

    results["table"] = [{"metric": m, "likeness": a, "pytorch": b, "ratio": r} for m, a, b, r in rows]
    with open(os.path.join(dest, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("| metric | likeness | PyTorch | likeness / PyTorch |")
    print("|---|---|---|---|")
    for m, a, b, r in rows:
        print(f"| {m} | {a} | {b} | {r:.2f}× |")


if __name__ == "__main__":
    main()
