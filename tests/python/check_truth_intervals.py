#!/usr/bin/env python3
"""NumPy oracle of the knowledge analysis's intervals (docs/statistics.md, "Knowledge levels";
core/analysis/knowledge_intervals.h).

Usage: check_truth_intervals.py RUN.h5 INDICES.u32 --task TASK

INDICES.u32 holds the bootstrap's resample indices as raw little-endian uint32, B rows of N
(core::analysis::bootstrapResampleIndices(N, B, seed) for the run's N, B and seed; the gtest
KnowledgeIntervals.NumPyOracle writes it). Recomputed here from the run file's eval/logits,
eval/labels and analysis/<student>/grad_rescale with NumPy, never with KDScope's code:

- the gain decomposition (CE, LS, KD-pt, KD in analysis/knowledge attr `students`): the four
  accuracies on each resample row, the levels and the LS share, np.percentile (linear);
- per student: the Spearman correlation of w with the teacher's p_y (average ranks, NaN
  pairs dropped), and the geometry agreement from probabilities (mean teacher probability of
  class j over the examples of class i; Pearson of the off-diagonal entries), each on every
  resample row, np.percentile.

Exit 0 and "check_truth_intervals: ok (K checks)" when everything agrees; 1 with each mismatch.
"""

import argparse
import sys

import h5py
import numpy as np

FAILURES = []
CHECKS = [0]


def close(what, got, want, tol):
    CHECKS[0] += 1
    if np.isnan(want) and np.isnan(got):
        return
    if not abs(got - want) <= tol:
        FAILURES.append(f"{what}: file {got!r}, NumPy {want!r}")


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def ranks(x):
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return r


def pearson(a, b):
    if len(a) < 2:
        return np.nan
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return np.nan if den == 0 else float((a * b).sum() / den)


def spearman(a, b):
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if len(a) < 2:
        return np.nan
    return pearson(ranks(a), ranks(b))


def class_similarity(probs, labels, c):
    out = np.full((c, c), np.nan)
    for i in range(c):
        rows = probs[labels == i]
        if len(rows):
            out[i] = rows.mean(axis=0)
    return out


def off_diagonal_correlation(a, b):
    mask = ~np.eye(a.shape[0], dtype=bool)
    x, y = a[mask], b[mask]
    keep = ~(np.isnan(x) | np.isnan(y))
    return pearson(x[keep], y[keep])


def percentile(replicates):
    r = np.asarray(replicates, dtype=float)
    r = r[~np.isnan(r)]
    return np.percentile(r, 2.5), np.percentile(r, 97.5)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("indices")
    parser.add_argument("--task", required=True)
    args = parser.parse_args()
    f = h5py.File(args.run, "r")
    t = f["tasks"][args.task]
    labels = t["eval/labels"][()].astype(np.int64)
    n = len(labels)
    c = int(t.attrs["num_classes"])
    idx = np.fromfile(args.indices, dtype="<u4").reshape(-1, n)
    logits = {m: t["models"][m]["eval/logits"][()].astype(np.float64) for m in t["models"]}
    correct = {m: (z.argmax(axis=1) == labels).astype(float) for m, z in logits.items()}
    a = t["analysis"]

    k = a["knowledge"]
    students = [s.decode() if isinstance(s, bytes) else s for s in k.attrs["students"]]
    acc = np.stack([correct[s][idx].mean(axis=1) for s in students])  # [4, B]
    reps = {
        "universe": acc[1] - acc[0],
        "instance": acc[2] - acc[1],
        "domain": acc[3] - acc[2],
        "total": acc[3] - acc[0],
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        reps["ls_share_of_kd_gain"] = np.where(acc[3] != acc[0], (acc[1] - acc[0]) / (acc[3] - acc[0]), np.nan)
    for name, r in reps.items():
        lo, hi = percentile(r)
        close(f"knowledge {name}_lo", float(k.attrs[name + "_lo"]), lo, 1e-12)
        close(f"knowledge {name}_hi", float(k.attrs[name + "_hi"]), hi, 1e-12)

    pt = softmax(logits["teacher"])
    py = pt[np.arange(n), labels]
    for s in logits:
        if s == "teacher" or s not in a:
            continue
        g = a[s]
        ps = softmax(logits[s])
        if "geometry_agreement_probs_lo" in g.attrs and c < 3:
            # Two off-diagonal entries correlate +-1 by construction: no interval (NaN ends).
            close(f"{s} geometry_agreement_probs_lo", float(g.attrs["geometry_agreement_probs_lo"]), np.nan, 0)
        elif "geometry_agreement_probs_lo" in g.attrs:
            r = [off_diagonal_correlation(class_similarity(pt[row], labels[row], c),
                                          class_similarity(ps[row], labels[row], c)) for row in idx]
            lo, hi = percentile(r)
            close(f"{s} geometry_agreement_probs_lo", float(g.attrs["geometry_agreement_probs_lo"]), lo, 1e-9)
            close(f"{s} geometry_agreement_probs_hi", float(g.attrs["geometry_agreement_probs_hi"]), hi, 1e-9)
        if "spearman_w_confidence_lo" in g.attrs:
            w = g["grad_rescale"][()].astype(np.float64)
            # py from float32 logits as the analysis has them: the ranks, not the values, matter.
            r = [spearman(w[row], py[row]) for row in idx]
            lo, hi = percentile(r)
            close(f"{s} spearman_w_confidence_lo", float(g.attrs["spearman_w_confidence_lo"]), lo, 1e-9)
            close(f"{s} spearman_w_confidence_hi", float(g.attrs["spearman_w_confidence_hi"]), hi, 1e-9)
    if FAILURES:
        for line in FAILURES:
            print(line)
        print(f"check_truth_intervals: {len(FAILURES)} of {CHECKS[0]} checks failed")
        return 1
    print(f"check_truth_intervals: ok ({CHECKS[0]} checks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
