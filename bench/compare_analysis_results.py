#!/usr/bin/env python3
"""Compare the analysis results of two analysed copies of one run file (e.g. two builds of
kdscope on the same run, bench/run-analysis-bench.sh with KEEP=FILE): for every float dataset
under /tasks/<task>/analysis present in both, the largest absolute difference, and which are
bit-identical, then the same for every numeric attribute of those groups and datasets (the
intervals, p-values and estimates are attributes), with a summary line of each. Datasets or
attributes present in one file only are listed.

  /usr/bin/python3 bench/compare_analysis_results.py BEFORE.h5 AFTER.h5 [--only heads,probes]
"""
import argparse
import sys

import h5py
import numpy as np


def datasets(f):
    out = {}
    for task in f["tasks"]:
        g = f["tasks"][task]
        if "analysis" not in g:
            continue

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "fiu":
                out[f"{task}/{name}"] = obj[()]
            for key, value in obj.attrs.items():
                v = np.asarray(value)
                if v.dtype.kind in "fiub":
                    out[f"{task}/{name}@{key}"] = v

        g["analysis"].visititems(visit)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--only", default="", help="comma-separated substrings of the dataset names to compare")
    a = p.parse_args()
    with h5py.File(a.before, "r") as fb, h5py.File(a.after, "r") as fa:
        b = datasets(fb)
        c = datasets(fa)
    keys = sorted(set(b) | set(c))
    if a.only:
        wanted = a.only.split(",")
        keys = [k for k in keys if any(w in k for w in wanted)]
    counts = {"identical": 0, "different": 0, "one file only": 0}
    for k in keys:
        if k not in b or k not in c:
            counts["one file only"] += 1
            print(f"{k}: only in {'after' if k in c else 'before'}")
            continue
        x, y = np.asarray(b[k], dtype=np.float64), np.asarray(c[k], dtype=np.float64)
        if x.shape != y.shape:
            print(f"{k}: shapes differ {x.shape} vs {y.shape}")
            continue
        same = np.array_equal(x, y, equal_nan=True)
        d = np.nanmax(np.abs(x - y)) if x.size and not np.all(np.isnan(x - y)) else 0.0
        counts["identical" if same else "different"] += 1
        print(f"{k}: {'identical' if same else f'max |difference| {d:.3g}'}")
    print("summary: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
