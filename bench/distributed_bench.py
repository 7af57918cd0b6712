#!/usr/bin/env python3
"""Data-parallel training on this machine (bench/README.md, "Data-parallel training").

Usage: distributed_bench.py KDSCOPE [--repeats 3] [--work DIR]

Trains the same MLP job (the teacher: a synthetic vector task, batch 64) as
  A: 1 process x 2 threads   (kdscope run --threads 2 --blas-threads 2)
  B: 2 processes x 1 thread  (kdscope run --nproc 2 --threads 1 --blas-threads 1)
interleaved A B A B ... (the machine is shared: each pair is a ratio taken minutes apart at
most), and prints examples/s of each, their ratio, the allreduce time and bytes per step
that rank 0 reports, and a model of the speed-up on N machines at 1, 10 and 25 Gb/s.
Training time is read from --progress-json: from the teacher's "training" notice to its last
epoch event (so it includes the per-epoch evaluation on the eval split, done by rank 0 in B).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

parser = argparse.ArgumentParser()
parser.add_argument("kdscope")
parser.add_argument("--repeats", type=int, default=3)
parser.add_argument("--work", default=None)
parser.add_argument("--hidden", type=int, default=1024)
args = parser.parse_args()

work = args.work or tempfile.mkdtemp(prefix="kdscope-dist-bench-")
os.makedirs(work, exist_ok=True)
EPOCHS = 4
BATCH = 64
job = {
    "name": "distributed-bench", "seed": 1,
    "tasks": [{"name": "synthetic_hierarchy", "super_classes": 2, "classes_per_super": 2, "dim": 64,
               "examples_per_class": 1500}],
    "teacher": {"architecture": {"type": "mlp", "hidden": [args.hidden, args.hidden], "dropout": 0.0},
                "training": {"epochs": EPOCHS, "batch_size": BATCH}},
    "students": [],
    "recording": {"log_every": 50, "hidden": False},
    "analyze": False,
}
job_path = os.path.join(work, "job.json")
with open(job_path, "w") as f:
    json.dump(job, f)

INFO = re.compile(r"data-parallel over (\d+) ranks: (\d+) steps in ([0-9.e+-]+) s; rank 0 spent ([0-9.e+-]+) s "
                  r"in (\d+) allreduce calls of (\d+) bytes")


def run(config, out):
    cmd = [args.kdscope, "run", job_path, "--out", out, "--progress-json"]
    cmd += (["--threads", "2", "--blas-threads", "2"] if config == "A"
            else ["--nproc", "2", "--threads", "1", "--blas-threads", "1"])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    start = end = None
    steps = None
    info = None
    for line in proc.stdout.splitlines():
        update = json.loads(line)
        if update.get("type") != "progress":
            continue
        for notice in update["notices"]:
            if notice["model"] != "teacher":
                continue
            if notice["kind"] == "phase" and notice["message"] == "training":
                start = notice["elapsed_seconds"]
            if notice["kind"] == "epoch" and notice["epoch"] == notice["epochs"]:
                end = notice["elapsed_seconds"]
                steps = notice["steps"]
            m = INFO.search(notice["message"]) if notice["kind"] == "info" else None
            if m:
                info = m
    return end - start, steps, info


results = {"A": [], "B": []}
infos = []
for r in range(args.repeats):
    for config in ("A", "B"):
        seconds, steps, info = run(config, os.path.join(work, f"{config}{r}"))
        results[config].append((seconds, steps))
        if info:
            infos.append(info)
        print(f"repeat {r + 1} {config}: {seconds:.2f} s for {steps} steps", flush=True)

steps = results["A"][0][1]
# steps x batch: over-counts the short last batch of each epoch (< 1 %, the same for A and B).
examples = steps * BATCH
rate = {c: [examples / s for s, _ in results[c]] for c in results}
ratios = [b / a for a, b in zip(rate["A"], rate["B"])]
print()
print(f"job: MLP 64 -> {args.hidden} -> {args.hidden} -> 4, batch {BATCH}, {steps} steps ({EPOCHS} epochs)")
for c, label in (("A", "1 process x 2 threads"), ("B", "2 processes x 1 thread")):
    print(f"{label}: examples/s {', '.join(f'{x:.0f}' for x in rate[c])} (median {statistics.median(rate[c]):.0f})")
print(f"ratio B/A per pair: {', '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f})")

per_step_bytes = [int(m.group(6)) / int(m.group(2)) for m in infos]
per_step_ar = [float(m.group(4)) / int(m.group(2)) for m in infos]
calls = [int(m.group(5)) / int(m.group(2)) for m in infos]
bytes_step = statistics.median(per_step_bytes)
ar_step = statistics.median(per_step_ar)
print(f"allreduce per step (rank 0, 2 local ranks): {bytes_step / 1e6:.3f} MB in {statistics.median(calls):.1f} "
      f"calls, {ar_step * 1e3:.2f} ms (median over repeats; includes waiting for the slower rank)")

# Model: N machines, each as fast as this one with one process x 2 threads (A). A step of the
# global batch costs t_A / N of compute per machine plus a ring allreduce of the gradient:
# each rank sends and receives 2 (N - 1) / N x bytes, plus 2 (N - 1) messages of latency.
t_step = statistics.median([s / st for s, st in results["A"]])
latency = 50e-6
print(f"\nmodel: t_step(1 machine) = {t_step * 1e3:.2f} ms (A), gradient {bytes_step / 1e6:.3f} MB/step, "
      f"latency {latency * 1e6:.0f} us per message")
print("| N machines | " + " | ".join(f"{g} Gb/s" for g in (1, 10, 25)) + " |")
print("|---|---|---|---|")
for n in (2, 4, 8, 16):
    row = []
    for gbps in (1, 10, 25):
        comm = 2 * (n - 1) / n * bytes_step / (gbps * 1e9 / 8) + 2 * (n - 1) * latency
        row.append(f"{t_step / (t_step / n + comm):.2f}x")
    print(f"| {n} | " + " | ".join(row) + " |")
