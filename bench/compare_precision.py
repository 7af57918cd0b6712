#!/usr/bin/env python3
"""fp32 against bf16 replicates of one job (bench/README.md, "bf16 accuracy check"):
  /usr/bin/python3 bench/compare_precision.py ROOT FP32_DIR BF16_DIR
reads ROOT/FP32_DIR/rep-*/run.h5 and ROOT/BF16_DIR/rep-*/run.h5 (kdscope run JOB --out DIR with
"replicates"), and per task and model prints the means and sd over replicates of the
accuracy (each replicate's is in the JSON), the paired difference (bf16 - fp32, same replicate seed) with a 95% Student-t
interval over replicates, an exact McNemar per seed pair, and paired t / Holm p; writes
ROOT/compare-FP32_DIR-BF16_DIR.json."""
import json, math, sys
from pathlib import Path
import h5py, numpy as np

root = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/runs/bf16")
FP, BF = (sys.argv[2], sys.argv[3]) if len(sys.argv) > 3 else ("fp32", "bf16")
T975 = {1: 12.706204736, 2: 4.302652730, 3: 3.182446305, 4: 2.776445105, 5: 2.570581836, 7: 2.364624252}

def load(dirname):
    runs = {}
    for rep in sorted((root / dirname).glob("rep-*/run.h5")):
        seed = int(rep.parent.name.split("-")[1])
        out = {}
        with h5py.File(rep, "r") as f:
            assert f.attrs["status"] == "complete", rep
            for task, g in f["tasks"].items():
                labels = g["eval/labels"][()]
                for model, m in g["models"].items():
                    pred = m["eval/logits"][()].argmax(axis=1)
                    out[(task, model)] = (pred == labels, m.attrs.get("precision", "?"))
        runs[seed] = out
    return runs

def t_two_sided_p(t, df):
    """Two-sided Student-t p, by Simpson's rule on the density over [0, |t|]."""
    u = np.linspace(0.0, abs(t), 20001)
    f = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2)) * (1 + u * u / df) ** (-(df + 1) / 2)
    h = u[1] - u[0]
    integral = h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())
    return max(0.0, 1.0 - 2.0 * integral)

def t975(df):
    """The 0.975 quantile of Student's t, by bisection on t_two_sided_p (T975 where tabled)."""
    if df in T975:
        return T975[df]
    lo, hi = 0.0, 100.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_two_sided_p(mid, df) > 0.05 else (lo, mid)
    return (lo + hi) / 2

def mcnemar_p(b, c):
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)

fp, bf = load(FP), load(BF)
seeds = sorted(set(fp) & set(bf))
keys = list(fp[seeds[0]].keys())
rows = []
print(f"seeds {seeds}; accuracies in %, sd over replicates, diff = bf16 - fp32 paired by seed, 95% t interval (df {len(seeds)-1})")
print(f"{'task':11s} {'model':8s} {'n':>5s} {'fp32 mean ± sd':>16s} {'bf16 mean ± sd':>16s} {'diff [95% t]':>26s} {'McNemar p per seed':>24s} verdict")
for key in keys:
    task, model = key
    a = np.array([fp[s][key][0].mean() for s in seeds]) * 100
    b = np.array([bf[s][key][0].mean() for s in seeds]) * 100
    assert all(fp[s][key][1] == "fp32" and bf[s][key][1] == "bf16" for s in seeds), key
    d = b - a
    n = len(seeds)
    half = t975(n - 1) * d.std(ddof=1) / math.sqrt(n)
    lo, hi = d.mean() - half, d.mean() + half
    ps = []
    disc = [0, 0]
    for s in seeds:
        x, y = fp[s][key][0], bf[s][key][0]
        ps.append(mcnemar_p(int((x & ~y).sum()), int((~x & y).sum())))
        disc[0] += int((x & ~y).sum()); disc[1] += int((~x & y).sum())
    se = d.std(ddof=1) / math.sqrt(n)
    tp = t_two_sided_p(d.mean() / se, n - 1) if se > 0 else (1.0 if d.mean() == 0 else 0.0)
    holds0 = lo <= 0 <= hi
    within_spread = abs(d.mean()) < a.std(ddof=1)
    verdict = "no detectable difference" if holds0 else ("detectable" + (", below the fp32 spread" if within_spread else ""))
    N = fp[seeds[0]][key][0].size
    print(f"{task:11s} {model:8s} {N:5d} {a.mean():7.2f} ± {a.std(ddof=1):5.2f}  {b.mean():7.2f} ± {b.std(ddof=1):5.2f}  {d.mean():+6.2f} [{lo:+6.2f}, {hi:+6.2f}]  {' '.join(f'{p:.2f}' for p in ps):>24s} {disc[0]}/{disc[1]} {verdict}")
    rows.append(dict(t_p=tp, task=task, model=model, n=N, fp32=a.tolist(), bf16=b.tolist(), diff_mean=d.mean(), lo=lo, hi=hi,
                     fp32_sd=a.std(ddof=1), bf16_sd=b.std(ddof=1), mcnemar_p=ps, discordant_fp32_only_bf16_only=disc, holds_zero=bool(holds0), within_fp32_spread=bool(within_spread)))
# Holm over the comparisons of this table.
order = sorted(range(len(rows)), key=lambda i: rows[i]["t_p"])
running = 0.0
for rank, i in enumerate(order):
    running = max(running, min(1.0, (len(rows) - rank) * rows[i]["t_p"]))
    rows[i]["holm_p"] = running
print("paired t p and Holm p over the %d comparisons:" % len(rows))
for r in rows:
    print(f"  {r['task']:11s} {r['model']:8s} t p = {r['t_p']:.3f}, Holm p = {r['holm_p']:.3f}")
json.dump(rows, open(root / f"compare-{FP}-{BF}.json", "w"), indent=1)
