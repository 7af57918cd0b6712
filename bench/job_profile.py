#!/usr/bin/python3
"""Where a whole `kdscope run` job spends its time, for several settings, interleaved.

    /usr/bin/python3 bench/job_profile.py --kdscope BUILD/app/kdscope --job samples/quickstart.json \
        [--repeats 3] [--epochs 4] [--no-analyze] [--teacher-checkpoint] \
        --variant NAME[:KDSCOPE ARGS][:JOB FIELD=VALUE,...][:KDSCOPE BINARY] [--variant ...]

Each variant runs the same job (its JSON changed as asked: `--epochs` for the teacher and every
student, `--no-analyze` sets "analyze": false, and the variant's own fields such as
cache_teacher_outputs=false) with its own command-line arguments (e.g. `--blas-threads 1`),
one run of each variant after the other, `--repeats` times. A variant's fourth part names
another kdscope binary (a build before a change, copied aside) for before/after comparisons. `--teacher-checkpoint` trains the
teacher once first and then loads it in every run, so a run is the students plus fixed costs.

Each run's time by phase is the job's own profile (the "time by phase" line `kdscope run`
prints at the end, from core/engine/run_job.cpp), its wall, user and system CPU from GNU time.
Prints a Markdown table: the median of each phase over the repeats per variant, and each
variant's ratio to the first. Also checks that every variant's student eval logits equal the
first variant's (max absolute difference printed), so a faster setting is also the same result.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

import h5py
import numpy as np

PHASE_LINE = re.compile(r"time by phase \(wall s\): (.*)$")


def parse_variant(text):
    parts = text.split(":")
    name = parts[0]
    args = parts[1].split() if len(parts) > 1 and parts[1] else []
    fields = {}
    if len(parts) > 2 and parts[2]:
        for item in parts[2].split(","):
            key, value = item.split("=", 1)
            fields[key] = json.loads(value)
    binary = parts[3] if len(parts) > 3 and parts[3] else None
    return name, args, fields, binary


def job_for(base, epochs, analyze, fields, checkpoint):
    job = json.loads(json.dumps(base))
    if epochs:
        job["teacher"].setdefault("training", {})["epochs"] = epochs
        for s in job.get("students", []):
            s.setdefault("training", {})["epochs"] = epochs
    if analyze is not None:
        job["analyze"] = analyze
    if checkpoint:
        job["teacher"]["checkpoint"] = checkpoint
    job.update(fields)
    return job


def run(kdscope, job_path, out, args):
    cmd = ["/usr/bin/time", "-f", "TIME %e %U %S", kdscope, "run", job_path, "--out", out, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    phases = {}
    wall = user = system = None
    for line in proc.stderr.splitlines():
        m = PHASE_LINE.search(line)
        if m:
            for item in m.group(1).split("; "):
                name, value = item.rsplit(" ", 1)
                phases[name] = float(value)
        if line.startswith("TIME "):
            wall, user, system = (float(v) for v in line.split()[1:])
    if not phases:
        sys.exit(f"no 'time by phase' line from {' '.join(cmd)}")
    phases["wall (whole process)"] = wall
    phases["user CPU"] = user
    phases["system CPU"] = system
    return phases


def student_logits(run_file):
    out = {}
    with h5py.File(run_file, "r") as f:
        for task in f["tasks"]:
            for model in f[f"tasks/{task}/models"]:
                if model != "teacher":
                    out[(task, model)] = f[f"tasks/{task}/models/{model}/eval/logits"][:]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kdscope", required=True)
    ap.add_argument("--job", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=0)
    ap.add_argument("--no-analyze", action="store_true")
    ap.add_argument("--teacher-checkpoint", action="store_true")
    ap.add_argument("--variant", action="append", required=True)
    ap.add_argument("--keep", help="keep the runs in this folder")
    opts = ap.parse_args()
    variants = [parse_variant(v) for v in opts.variant]
    with open(opts.job) as f:
        base = json.load(f)
    base_dir = os.path.dirname(os.path.abspath(opts.job))
    if base.get("data_dir"):
        base["data_dir"] = os.path.join(base_dir, base["data_dir"])
    work = opts.keep or tempfile.mkdtemp(prefix="kdscope-job-profile-")
    os.makedirs(work, exist_ok=True)
    checkpoint = None
    if opts.teacher_checkpoint:
        teacher_job = job_for(base, opts.epochs, False, {}, None)
        teacher_job["students"] = []
        path = os.path.join(work, "teacher-job.json")
        with open(path, "w") as f:
            json.dump(teacher_job, f)
        run(opts.kdscope, path, os.path.join(work, "teacher"), [])
        checkpoint = os.path.join(work, "teacher", "checkpoints", "{task}", "teacher.pt")
    results = {name: [] for name, _, _, _ in variants}
    logits = {}
    for r in range(opts.repeats):
        for name, args, fields, binary in variants:
            job = job_for(base, opts.epochs, False if opts.no_analyze else None, fields, checkpoint)
            path = os.path.join(work, f"{name}.json")
            with open(path, "w") as f:
                json.dump(job, f)
            out = os.path.join(work, f"{name}-{r}")
            shutil.rmtree(out, ignore_errors=True)
            phases = run(binary or opts.kdscope, path, out, args)
            results[name].append(phases)
            print(f"# {name} run {r + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()), flush=True)
            if r == 0:
                logits[name] = student_logits(os.path.join(out, "run.h5"))
            if not opts.keep:
                shutil.rmtree(out, ignore_errors=True)
    first = variants[0][0]
    for name, _, _, _ in variants[1:]:
        diffs = [float(np.max(np.abs(logits[name][k] - logits[first][k]))) for k in logits[first] if k in logits[name]]
        print(f"# student eval logits, {name} against {first}: max |difference| {max(diffs) if diffs else 0.0:.3g}")
    phases = []
    for name, _, _, _ in variants:
        for run_phases in results[name]:
            for p in run_phases:
                if p not in phases:
                    phases.append(p)
    names = [n for n, _, _, _ in variants]
    print()
    print("| phase (median of %d, s) | " % opts.repeats + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    medians = {}
    for p in phases:
        row = []
        for n in names:
            values = [rp[p] for rp in results[n] if p in rp]
            medians[(n, p)] = statistics.median(values) if values else None
            row.append(f"{medians[(n, p)]:.2f}" if values else "-")
        print(f"| {p} | " + " | ".join(row) + " |")
    print()
    for n in names[1:]:
        a, b = medians[(first, "wall (whole process)")], medians[(n, "wall (whole process)")]
        print(f"wall, {first} / {n}: {a / b:.2f}x")
    if not opts.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
