#!/usr/bin/python3
"""How the cost of `kdscope run` and `kdscope analyze` grows with the eval examples and with
the model width (issue #15): wall time and peak resident memory of each, and the log-log slope
of each against the size.

    /usr/bin/python3 bench/scaling.py --kdscope BUILD/app/kdscope [--evals 1000,10000,100000]
        [--widths 64,128,256,512,768] [--width-evals 10000] [--train 2000] [--out DIR]

The job is synthetic_hierarchy (12 classes, 32 dimensions; generated, so any size can be had
offline): a teacher MLP [w, w] and a KD student MLP [w / 4], one epoch, the eval split holding
the given number of examples (train examples fixed at --train), every analysis that applies to
MLPs (task metrics and their intervals, knowledge levels, CKA linear/RBF/minibatch with the
matched-depth bootstrap, probes, residual). GNU time gives each process's wall time and
maximum resident set size. Prints a Markdown table per sweep and the slope of log(time) and
log(memory) against log(size) over the sweep (1: linear; 2: quadratic).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile


def timed(cmd):
    proc = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M", *cmd], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    for line in proc.stderr.splitlines():
        if line.startswith("TIME "):
            wall, rss_kb = line.split()[1:]
            return float(wall), float(rss_kb) / 1024.0
    sys.exit("no GNU time line")


def job(n_eval, n_train, width, seed=1):
    classes = 12
    total = n_eval + n_train
    per_class = math.ceil(total / classes)
    total = per_class * classes
    return {
        "name": f"scaling-{n_eval}-{width}",
        "seed": seed,
        "tasks": [{"name": "synthetic_hierarchy", "super_classes": 4, "classes_per_super": 3, "dim": 32,
                   "examples_per_class": per_class, "eval_fraction": n_eval / total}],
        "teacher": {"architecture": {"type": "mlp", "hidden": [width, width]},
                    "training": {"epochs": 1, "batch_size": 64, "lr": 0.001}},
        "students": [{"name": "kd", "architecture": {"type": "mlp", "hidden": [max(8, width // 4)]},
                      "training": {"epochs": 1, "batch_size": 64, "lr": 0.002},
                      "objective": {"lambda": 0.5, "temperature": 2.0}}],
        "analyze": False,
    }


def slope(xs, ys):
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def sweep(kdscope, work, label, sizes, make):
    rows = []
    for size in sizes:
        spec = make(size)
        path = os.path.join(work, f"{label}-{size}.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        out = os.path.join(work, f"{label}-{size}")
        shutil.rmtree(out, ignore_errors=True)
        run_wall, run_mb = timed([kdscope, "run", path, "--out", out])
        run_file = os.path.join(out, "run.h5")
        analyze_wall, analyze_mb = timed([kdscope, "analyze", run_file])
        file_mb = os.path.getsize(run_file) / 1024.0 / 1024.0
        rows.append((size, run_wall, run_mb, analyze_wall, analyze_mb, file_mb))
        print(f"# {label} {size}: run {run_wall:.2f} s {run_mb:.0f} MiB; analyze {analyze_wall:.2f} s "
              f"{analyze_mb:.0f} MiB; run file {file_mb:.1f} MiB", flush=True)
        shutil.rmtree(out, ignore_errors=True)
    return rows


def table(title, rows):
    print(f"\n{title}\n")
    print("| size | run wall s | run peak MiB | analyze wall s | analyze peak MiB | run file MiB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]:,} | {r[1]:.2f} | {r[2]:.0f} | {r[3]:.2f} | {r[4]:.0f} | {r[5]:.1f} |")
    xs = [r[0] for r in rows]
    print(f"| log-log slope | {slope(xs, [r[1] for r in rows]):.2f} | {slope(xs, [r[2] for r in rows]):.2f} | "
          f"{slope(xs, [r[3] for r in rows]):.2f} | {slope(xs, [r[4] for r in rows]):.2f} | "
          f"{slope(xs, [r[5] for r in rows]):.2f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kdscope", required=True)
    ap.add_argument("--evals", default="1000,10000,100000")
    ap.add_argument("--widths", default="64,128,256,512,768")
    ap.add_argument("--width-evals", type=int, default=10000)
    ap.add_argument("--eval-width", type=int, default=256)
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--out")
    opts = ap.parse_args()
    work = opts.out or tempfile.mkdtemp(prefix="kdscope-scaling-")
    os.makedirs(work, exist_ok=True)
    evals = [int(v) for v in opts.evals.split(",") if v]
    widths = [int(v) for v in opts.widths.split(",") if v]
    if evals:
        rows = sweep(opts.kdscope, work, "evals", evals, lambda n: job(n, opts.train, opts.eval_width))
        table(f"Eval examples (width {opts.eval_width}, {opts.train} train examples)", rows)
    if widths:
        rows = sweep(opts.kdscope, work, "width", widths, lambda w: job(opts.width_evals, opts.train, w))
        table(f"Width ({opts.width_evals} eval examples, {opts.train} train examples)", rows)
    if not opts.out:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
