"""Whether two analysed copies of one run file hold the same analysis, bit for bit.

Usage: same_analysis.py A.h5 B.h5

Walks /tasks/<task>/analysis of both: every group and dataset (any type: floats, integers,
strings), and every attribute of them, the analysis group's own included (its order-carrying
lists such as 'skipped' compared in order), except the analysis group's 'seconds' (its wall
time). Exit 0 when everything is equal (NaN equal to NaN) and both hold the same objects;
else prints each difference and exits 1. Used by AnalyzeRun.PassesSideBySideGiveTheResultsOfOneAfterAnother.
"""
import sys

import h5py
import numpy as np


def entries(f):
    out = {}
    for task in f["tasks"]:
        if "analysis" not in f["tasks"][task]:
            continue
        root = f["tasks"][task]["analysis"]

        def attrs(name, obj):
            for key, value in obj.attrs.items():
                if name == "" and key == "seconds":
                    continue
                out[f"{task}/{name}@{key}"] = value

        attrs("", root)

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[f"{task}/{name}"] = obj[()]
            else:
                out[f"{task}/{name}/"] = "group"
            attrs(name, obj)

        root.visititems(visit)
    return out


def same(x, y):
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape or x.dtype.kind != y.dtype.kind:
        return False
    if x.dtype.kind == "f":
        return np.array_equal(x, y, equal_nan=True) and np.array_equal(np.signbit(x), np.signbit(y))
    return np.array_equal(x, y)


def main():
    with h5py.File(sys.argv[1], "r") as fa, h5py.File(sys.argv[2], "r") as fb:
        a, b = entries(fa), entries(fb)
    bad = 0
    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b:
            print(f"{key}: only in {'B' if key in b else 'A'}")
            bad += 1
        elif not same(a[key], b[key]):
            print(f"{key}: differs: {a[key]!r} vs {b[key]!r}"[:400])
            bad += 1
    print(f"{len(set(a) | set(b))} entries, {bad} differ")
    sys.exit(1 if bad or not a else 0)


main()
