"""Compares the trained models of two run files (tests/app/distributed*.sh).

Usage: compare_runs.py A.h5 B.h5 TOLERANCE [--expect-differ]

For every model of every task, the largest absolute difference of the eval logits
(/tasks/T/models/M/eval/logits) and of the logged training loss (train/loss, same steps;
not compared with --expect-differ, whose control run takes other steps).
Without --expect-differ: exit 0 when every difference is at most TOLERANCE. With it: exit 0
when some model's logits differ by more than 100 x TOLERANCE (a control run that trains
differently, showing the tolerance is tight enough to notice). Prints each difference.
"""
import sys

import h5py
import numpy as np

a_path, b_path, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
expect_differ = "--expect-differ" in sys.argv[4:]
worst = 0.0
with h5py.File(a_path, "r") as a, h5py.File(b_path, "r") as b:
    for task in a["tasks"]:
        for model in a["tasks"][task]["models"]:
            ga = a["tasks"][task]["models"][model]
            gb = b["tasks"][task]["models"][model]
            la = ga["eval/logits"][()].astype(np.float64)
            lb = gb["eval/logits"][()].astype(np.float64)
            d_logits = float(np.max(np.abs(la - lb)))
            if expect_differ:  # another batch size: other steps; the logits say enough
                print(f"{task}/{model}: max |logits difference| {d_logits:.3e}")
                worst = max(worst, d_logits)
                continue
            sa, sb = ga["train/step"][()], gb["train/step"][()]
            if not np.array_equal(sa, sb):
                print(f"{task}/{model}: logged steps differ: {sa[:5]}... vs {sb[:5]}...")
                sys.exit(1)
            d_loss = float(np.max(np.abs(ga["train/loss"][()].astype(np.float64) -
                                         gb["train/loss"][()].astype(np.float64))))
            print(f"{task}/{model}: max |logits difference| {d_logits:.3e} (logits up to "
                  f"{np.max(np.abs(la)):.2f}), max |loss difference| {d_loss:.3e} over {len(sa)} steps")
            worst = max(worst, d_logits, d_loss)
if expect_differ:
    ok = worst > 100 * tol
    print(f"control: largest difference {worst:.3e} {'>' if ok else '<='} 100 x tolerance {tol:g}")
else:
    ok = worst <= tol
    print(f"largest difference {worst:.3e} {'<=' if ok else '>'} tolerance {tol:g}")
sys.exit(0 if ok else 1)
