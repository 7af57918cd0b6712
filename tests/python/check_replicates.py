#!/usr/bin/env python3
"""NumPy oracle for a replicate folder (core/study/replicates.h, docs/statistics.md).

Reads DIR/replicates.json, every run file it lists (h5py), and DIR/replicate_summary.json.
Recomputes from the logits and labels each model's accuracy per replicate, the gap, then the
mean, the sample sd and the Student-t 95% interval over the replicates, and for every pair
the paired t p-value; the paired t of the students' per-replicate geometry_agreement and
w_confidence_spearman (metric_pairs); and the Holm-Bonferroni adjusted p of every test, the
steps written out here (sort the family's p ascending, multiply the i-th smallest by m - i,
running maximum, cap at 1). The t quantile and CDF are computed here without SciPy: the density
integrated numerically (composite Simpson on a substitution that maps the real line to
(-1, 1)), the quantile by bisection. Exit 0 and "check_replicates: ok N checks" when every
number agrees (1e-9 for the means, 1e-6 for the interval ends and p).

Usage: check_replicates.py DIR
"""
import json
import math
import os
import sys

import h5py
import numpy as np


def t_pdf(x, df):
    c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return np.exp(c - (df + 1) / 2 * np.log1p(x * x / df))


def t_cdf(t, df):
    # P(T <= t) = 1/2 + integral_0^t pdf; substitute x = t u, u in [0, 1], Simpson with 20001 points.
    u = np.linspace(0.0, 1.0, 20001)
    f = t_pdf(t * u, df) * t
    h = u[1] - u[0]
    integral = h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())
    return 0.5 + integral


def t_quantile(p, df):
    lo, hi = 0.0, 1000.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def main():
    folder = sys.argv[1]
    manifest = json.load(open(os.path.join(folder, "replicates.json")))
    summary = json.load(open(os.path.join(folder, "replicate_summary.json")))
    runs = [os.path.join(folder, r) for r in manifest["runs"]]
    n = len(runs)
    checks = 0
    bad = []

    def close(what, got, want, tol):
        nonlocal checks
        checks += 1
        if got is None or not math.isclose(got, want, rel_tol=0, abs_tol=tol):
            bad.append(f"{what}: summary {got}, numpy {want}")

    tq = t_quantile(0.975, n - 1)
    for task in summary["tasks"]:
        name = task["task"]
        acc = {}
        for path in runs:
            with h5py.File(path, "r") as f:
                labels = f[f"/tasks/{name}/eval/labels"][...]
                for model in f[f"/tasks/{name}/models"]:
                    logits = f[f"/tasks/{name}/models/{model}/eval/logits"][...]
                    acc.setdefault(model, []).append(float(np.mean(np.argmax(logits, axis=1) == labels)))

        def check_metric(label, metric, values):
            values = np.array(values)
            mean = values.mean()
            sd = values.std(ddof=1)
            half = tq * sd / math.sqrt(n)
            close(label + " mean", metric["mean"], mean, 1e-9)
            close(label + " sd", metric["sd"], sd, 1e-9)
            close(label + " lo", metric["lo"], mean - half, 1e-6)
            close(label + " hi", metric["hi"], mean + half, 1e-6)

        teacher = {m["name"]: m for m in task["teacher"]}
        check_metric(f"{name}/teacher/accuracy", teacher["accuracy"], acc["teacher"])
        for student in task["students"]:
            metrics = {m["name"]: m for m in student["metrics"]}
            s = student["name"]
            check_metric(f"{name}/{s}/accuracy", metrics["accuracy"], acc[s])
            check_metric(f"{name}/{s}/gap", metrics["gap"], np.array(acc["teacher"]) - np.array(acc[s]))
        for pair in task["pairs"]:
            d = np.array(acc[pair["first"]]) - np.array(acc[pair["second"]])
            label = f"{name}/{pair['first']}-{pair['second']}"
            close(label + " mean difference", pair["mean_difference"], d.mean(), 1e-9)
            sd = d.std(ddof=1)
            if sd > 0:
                t = d.mean() / (sd / math.sqrt(n))
                p = 2 * (1 - t_cdf(abs(t), n - 1))
                close(label + " p", pair["p"], p, 1e-6)
                close(label + " lo", pair["lo"], d.mean() - tq * sd / math.sqrt(n), 1e-6)
        student_values = {st["name"]: {m["name"]: m["values"] for m in st["metrics"]} for st in task["students"]}
        for pair in task.get("metric_pairs", []):
            a = student_values[pair["first"]][pair["metric"]]
            b = student_values[pair["second"]][pair["metric"]]
            d = np.array([x - y for x, y in zip(a, b) if x is not None and y is not None])
            label = f"{name}/{pair['metric']}/{pair['first']}-{pair['second']}"
            close(label + " mean difference", pair["mean_difference"], d.mean(), 1e-9)
            sd = d.std(ddof=1) if len(d) > 1 else 0.0
            if sd > 0:
                t = d.mean() / (sd / math.sqrt(len(d)))
                close(label + " p", pair["p"], 2 * (1 - t_cdf(abs(t), len(d) - 1)), 1e-6)

    # Holm over the family: every pair and metric pair of every task.
    family = []
    for task in summary["tasks"]:
        family += task["pairs"] + task.get("metric_pairs", [])
    tested = [t for t in family if t["p"] is not None]
    m = len(tested)
    ranked = sorted(range(m), key=lambda i: tested[i]["p"])
    running = 0.0
    for step, i in enumerate(ranked):
        running = max(running, (m - step) * tested[i]["p"])
        close(f"Holm p of {tested[i]['first']}-{tested[i]['second']} ({tested[i].get('metric', 'accuracy')})",
              tested[i]["p_holm"], min(1.0, running), 1e-12)
        if tested[i]["family"] != m:
            bad.append(f"family size {tested[i]['family']}, want {m}")
    if bad:
        print(f"check_replicates: {len(bad)} of {checks} mismatches")
        for line in bad:
            print("  " + line)
        return 1
    print(f"check_replicates: ok {checks} checks (t_0.975,{n - 1} = {tq:.6f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
