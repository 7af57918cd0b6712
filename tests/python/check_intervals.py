#!/usr/bin/env python3
"""NumPy oracle of the intervals, paired tests and loss pattern `kdscope analyze` writes
(analysis "task"; docs/statistics.md, docs/run-format.md).

Usage: check_intervals.py RUN.h5 INDICES.u32 [--task TASK]

INDICES.u32 holds the bootstrap's resample indices as raw little-endian uint32, B rows of N
(core::analysis::bootstrapResampleIndices(N, B, seed) for the run's N, B and seed; the
gtest AnalysisIntervals.NumPyOracle writes it). Everything else is recomputed here from
the run file's eval/logits, eval/labels and eval/tokens with NumPy and the standard library,
never with KDScope's code:

- each model's and student's intervals: the statistic on every resample row, then
  np.percentile (linear); ECE with its 15 bins rebuilt per resample;
- paired tests: the discordant counts, the exact McNemar p as an exact integer sum
  (fractions), the paired bootstrap interval and its centred p;
- the loss pattern: Mann-Whitney U by counting pairs, its exact p by a rank-sum dynamic
  programme (no ties) or the tie-corrected normal approximation, the rank-biserial r; the
  class table, Pearson chi-square with its p (regularised upper gamma by series), Cramér's V
  and its bootstrap interval, Fisher's exact p by enumeration, Woolf's odds-ratio interval;
  the logistic regression by IRLS with numpy.linalg.

Exit 0 and "check_intervals: ok (K checks)" when everything agrees; 1 with each mismatch.
"""

import argparse
import math
import sys
from fractions import Fraction

import h5py
import numpy as np

Z975 = 1.959963984540054
FAILURES = []
CHECKS = [0]


def close(what, got, want, tol):
    CHECKS[0] += 1
    if (math.isnan(want) and math.isnan(got)) or (math.isinf(want) and got == want):
        return
    if not (abs(got - want) <= tol * max(1.0, abs(want))):
        FAILURES.append(f"{what}: file {got!r}, NumPy {want!r} (tolerance {tol})")


def equal(what, got, want):
    CHECKS[0] += 1
    if got != want:
        FAILURES.append(f"{what}: file {got!r}, expected {want!r}")


def softmax(z):
    z = z.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def pct(reps):
    reps = np.asarray(reps, dtype=np.float64)
    reps = reps[~np.isnan(reps)]
    return np.percentile(reps, [2.5, 97.5])


def ece_of(conf, correct, idx):
    edges = np.arange(16) / 15.0
    bins = np.maximum(np.searchsorted(edges, conf, side="left") - 1, 0)
    out = []
    for row in idx:
        c = np.bincount(bins[row], weights=correct[row], minlength=15)
        p = np.bincount(bins[row], weights=conf[row], minlength=15)
        out.append(np.abs(c - p).sum() / len(row))
    return np.array(out)


def mcnemar_p(b, c):
    m = b + c
    if m == 0:
        return 1.0
    k = min(b, c)
    tail = Fraction(sum(math.comb(m, j) for j in range(k + 1)), 2 ** m)
    return float(min(Fraction(1), 2 * tail))


def u_statistic(x1, x0):
    return float(sum((a > x0).sum() + 0.5 * (a == x0).sum() for a in x1))


def exact_u_p(u, n1, n0):
    """2 min(P(U <= u), P(U >= u)) from the rank sums of n1 of N = n1 + n0 ranks."""
    n = n1 + n0
    # ways[k][s]: subsets of size k of ranks 1..i with rank sum s.
    top = n * (n + 1) // 2
    ways = [[0] * (top + 1) for _ in range(n1 + 1)]
    ways[0][0] = 1
    for r in range(1, n + 1):
        for k in range(min(r, n1), 0, -1):
            row, prev = ways[k], ways[k - 1]
            for s in range(top, r - 1, -1):
                row[s] += prev[s - r]
    total = math.comb(n, n1)
    # U = rank sum of group 1 - n1 (n1 + 1) / 2.
    offset = n1 * (n1 + 1) // 2
    dist = [ways[n1][s + offset] if s + offset <= top else 0 for s in range(n1 * n0 + 1)]
    u = int(round(u))
    below = Fraction(sum(dist[: u + 1]), total)
    above = Fraction(sum(dist[u:]), total)
    return float(min(Fraction(1), 2 * min(below, above)))


def mann_whitney(values, lost):
    x1, x0 = values[lost], values[~lost]
    u = u_statistic(x1, x0)
    n1, n0 = len(x1), len(x0)
    _, counts = np.unique(values, return_counts=True)
    tie = float((counts ** 3 - counts).sum())
    if tie == 0 and n1 * n0 <= 2500:
        p = exact_u_p(u, n1, n0)
    else:
        total = n1 + n0
        var = n1 * n0 / 12.0 * ((total + 1) - tie / (total * (total - 1)))
        z = max(0.0, abs(u - n1 * n0 / 2.0) - 0.5) / math.sqrt(var)
        p = math.erfc(z / math.sqrt(2)) if var > 0 else 1.0
    return u, p, 2 * u / (n1 * n0) - 1


def upper_gamma_q(a, x):
    """Q(a, x) = 1 - P(a, x), P by its power series (fine for the small df here)."""
    if x <= 0:
        return 1.0
    term = 1.0 / a
    total = term
    k = 1
    while term > total * 1e-17:
        term *= x / (a + k)
        total += term
        k += 1
    return max(0.0, 1.0 - total * math.exp(-x + a * math.log(x) - math.lgamma(a)))


def chi_square(table):
    """table: C x 2 counts (rest, lost). Returns chi2, df, p, V (NaN when degenerate)."""
    t = np.asarray(table, dtype=np.float64)
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    if t.shape[0] < 2 or t.shape[1] < 2:
        return 0.0, 0, math.nan, math.nan
    expected = np.outer(t.sum(axis=1), t.sum(axis=0)) / t.sum()
    chi2 = float(((t - expected) ** 2 / expected).sum())
    df = (t.shape[0] - 1) * (t.shape[1] - 1)
    p = math.erfc(math.sqrt(chi2 / 2)) if df == 1 else upper_gamma_q(df / 2, chi2 / 2)
    v = math.sqrt(chi2 / (t.sum() * (min(t.shape) - 1)))
    return chi2, df, p, v


def fisher_p(a, b, c, d):
    row1, col1, n = a + b, a + c, a + b + c + d
    lo, hi = max(0, row1 + col1 - n), min(row1, col1)
    prob = {k: Fraction(math.comb(col1, k) * math.comb(n - col1, row1 - k), math.comb(n, row1)) for k in range(lo, hi + 1)}
    observed = prob[a]
    return float(min(Fraction(1), sum(p for p in prob.values() if p <= observed * (1 + Fraction(1, 10 ** 7)))))


def woolf(a, b, c, d):
    add = 0.5 if 0 in (a, b, c, d) else 0.0
    lor = math.log((a + add) * (d + add) / ((b + add) * (c + add)))
    se = math.sqrt(sum(1.0 / (v + add) for v in (a, b, c, d)))
    return math.exp(lor), math.exp(lor - Z975 * se), math.exp(lor + Z975 * se)


def irls(x, y):
    beta = np.zeros(x.shape[1])
    for _ in range(100):
        mu = 1 / (1 + np.exp(-x @ beta))
        w = mu * (1 - mu)
        step = np.linalg.solve(x.T @ (w[:, None] * x), x.T @ (y - mu))
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    mu = 1 / (1 + np.exp(-x @ beta))
    cov = np.linalg.inv(x.T @ ((mu * (1 - mu))[:, None] * x))
    return beta, np.sqrt(np.diag(cov))


def check_interval(what, group, name, want_est, reps):
    lo, hi = pct(reps)
    close(f"{what} {name}", float(group.attrs[name]), want_est, 1e-12)
    close(f"{what} {name}_lo", float(group.attrs[name + "_lo"]), lo, 1e-9)
    close(f"{what} {name}_hi", float(group.attrs[name + "_hi"]), hi, 1e-9)


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("indices")
    parser.add_argument("--task")
    args = parser.parse_args(argv)
    f = h5py.File(args.run, "r")
    tasks = [args.task] if args.task else list(f["tasks"])
    for task in tasks:
        t = f["tasks"][task]
        a = t["analysis"]
        labels = t["eval/labels"][:]
        n = len(labels)
        classes = int(t.attrs["num_classes"])
        teacher = [m for m in t["models"] if t["models"][m].attrs["role"] == "teacher"][0]
        students = [m for m in t["models"] if t["models"][m].attrs["role"] == "student" and m in a]
        g = a[teacher]["intervals"]
        b = int(g.attrs["resamples"])
        equal(f"{task} examples", int(g.attrs["examples"]), n)
        idx = np.fromfile(args.indices, dtype="<u4").astype(np.int64)
        equal(f"{task} indices size", idx.size, b * n)
        idx = idx.reshape(b, n)
        logits = {m: t["models"][m]["eval/logits"][:] for m in [teacher] + students}
        probs = {m: softmax(z) for m, z in logits.items()}
        correct = {m: (np.argmax(z, axis=1) == labels).astype(np.float64) for m, z in logits.items()}
        conf = {m: p.max(axis=1) for m, p in probs.items()}

        def model_checks(what, group, m):
            check_interval(what, group, "accuracy", correct[m].mean(), correct[m][idx].mean(axis=1))
            full = np.arange(n)[None, :]
            check_interval(what, group, "ece", ece_of(conf[m], correct[m], full)[0], ece_of(conf[m], correct[m], idx))

        model_checks(f"{task}/{teacher}", g, teacher)
        ct = correct[teacher]
        for s in students:
            gs = a[s]["intervals"]
            what = f"{task}/{s}"
            model_checks(what, gs, s)
            cs = correct[s]
            check_interval(what, gs, "teacher_accuracy", ct.mean(), ct[idx].mean(axis=1))
            full = np.arange(n)[None, :]
            check_interval(what, gs, "teacher_ece", ece_of(conf[teacher], ct, full)[0], ece_of(conf[teacher], ct, idx))
            check_interval(what, gs, "gap", (ct - cs).mean(), (ct - cs)[idx].mean(axis=1))
            check_interval(what, gs, "retained_fraction", cs.sum() / ct.sum(), cs[idx].sum(axis=1) / ct[idx].sum(axis=1))
            agree = (np.argmax(logits[teacher], 1) == np.argmax(logits[s], 1)).astype(np.float64)
            check_interval(what, gs, "agreement", agree.mean(), agree[idx].mean(axis=1))
            lp, lq = np.log(probs[teacher]), np.log(probs[s])
            kl = np.where(probs[teacher] > 0, probs[teacher] * (lp - lq), 0.0).sum(axis=1)
            check_interval(what, gs, "mean_kl", kl.mean(), kl[idx].mean(axis=1))
            # Paired tests against the teacher and every other student.
            for other in [teacher] + [o for o in students if o != s]:
                p = a[s]["paired"][other]
                co = correct[other]
                bb = int(((cs == 1) & (co == 0)).sum())
                cc = int(((cs == 0) & (co == 1)).sum())
                w = f"{task}/{s} vs {other}"
                equal(f"{w} only_this", int(p.attrs["only_this"]), bb)
                equal(f"{w} only_other", int(p.attrs["only_other"]), cc)
                close(f"{w} mcnemar_p", float(p.attrs["mcnemar_p"]), mcnemar_p(bb, cc), 1e-12)
                d = cs - co
                reps = d[idx].mean(axis=1)
                check_interval(w, p, "accuracy_difference", d.mean(), reps)
                want_p = (1 + (np.abs(reps - d.mean()) >= abs(d.mean())).sum()) / (b + 1)
                close(f"{w} bootstrap_p", float(p.attrs["bootstrap_p"]), want_p, 1e-12)
            # The loss pattern.
            lpg = a[s]["loss_pattern"]
            lost = (ct == 1) & (cs == 0)
            equal(f"{what} lost", int(lpg.attrs["lost"]), int(lost.sum()))
            if lost.sum() == 0 or lost.sum() == n:
                continue
            factors = {"teacher_confidence": conf[teacher],
                       "teacher_entropy": -np.where(probs[teacher] > 0, probs[teacher] * np.log(probs[teacher]), 0).sum(1)}
            if "eval/tokens" in t:
                factors["input_length"] = np.maximum((t["eval/tokens"][:] != 0).sum(axis=1) - 1, 0).astype(np.float64)
            equal(f"{what} factors", [str(x) for x in lpg.attrs["factors"]], list(factors))
            for name, values in factors.items():
                fg = lpg[name]
                u, p_value, r = mann_whitney(values, lost)
                close(f"{what} {name} u", float(fg.attrs["u"]), u, 1e-12)
                close(f"{what} {name} p_value", float(fg.attrs["p_value"]), p_value, 1e-9)
                close(f"{what} {name} rank_biserial", float(fg.attrs["rank_biserial"]), r, 1e-12)
                close(f"{what} {name} median_lost", float(fg.attrs["median_lost"]), float(np.median(values[lost])), 1e-12)
                close(f"{what} {name} median_rest", float(fg.attrs["median_rest"]), float(np.median(values[~lost])), 1e-12)
                close(f"{what} {name} mean_lost", float(fg.attrs["mean_lost"]), float(values[lost].mean()), 1e-12)
                lo, hi = float(fg.attrs["rank_biserial_lo"]), float(fg.attrs["rank_biserial_hi"])
                CHECKS[0] += 1
                if not (-1 <= lo <= hi <= 1):
                    FAILURES.append(f"{what} {name}: rank-biserial interval [{lo}, {hi}] is not inside [-1, 1]")
            cg = lpg["gold_class"]
            lost_c = np.bincount(labels[lost], minlength=classes)
            rest_c = np.bincount(labels[~lost], minlength=classes)
            equal(f"{what} class lost", list(cg["lost"][:]), list(lost_c))
            equal(f"{what} class rest", list(cg["rest"][:]), list(rest_c))
            chi2, df, p_value, v = chi_square(np.stack([rest_c, lost_c], axis=1))
            close(f"{what} chi_square", float(cg.attrs["chi_square"]), chi2, 1e-10)
            equal(f"{what} df", int(cg.attrs["df"]), df)
            close(f"{what} chi-square p", float(cg.attrs["p_value"]), p_value, 1e-9)
            reps = []
            for row in idx:
                ll = np.bincount(labels[row][lost[row]], minlength=classes)
                rr = np.bincount(labels[row][~lost[row]], minlength=classes)
                reps.append(chi_square(np.stack([rr, ll], axis=1))[3])
            close(f"{what} cramers_v", float(cg.attrs["cramers_v"]), v, 1e-10)
            lo, hi = pct(reps)
            close(f"{what} cramers_v_lo", float(cg.attrs["cramers_v_lo"]), lo, 1e-9)
            close(f"{what} cramers_v_hi", float(cg.attrs["cramers_v_hi"]), hi, 1e-9)
            all_lost, all_rest = int(lost.sum()), int((~lost).sum())
            for k in range(classes):
                aa, bb = int(lost_c[k]), int(rest_c[k])
                c2, d2 = all_lost - aa, all_rest - bb
                close(f"{what} class {k} fisher_p", float(cg["fisher_p"][k]), fisher_p(aa, bb, c2, d2), 1e-6)
                est, lo, hi = woolf(aa, bb, c2, d2)
                close(f"{what} class {k} odds_ratio", float(cg["odds_ratio"][k]), est, 1e-6)
                close(f"{what} class {k} odds_ratio_lo", float(cg["odds_ratio_lo"][k]), lo, 1e-6)
                close(f"{what} class {k} odds_ratio_hi", float(cg["odds_ratio_hi"][k]), hi, 1e-6)
            lg = lpg["logistic"]
            if int(lg.attrs["converged"]) != 1:
                continue
            terms = [x.decode() if isinstance(x, bytes) else str(x) for x in lg["term"][:]]
            columns = [np.ones(n)]
            for term in terms[1:]:
                if term.startswith("class:"):
                    columns.append((labels == int(term[6:])).astype(np.float64))
                else:
                    values = factors[term]
                    columns.append((values - values.mean()) / values.std(ddof=1))
            beta, se = irls(np.stack(columns, axis=1), lost.astype(np.float64))
            for k, term in enumerate(terms):
                close(f"{what} logistic {term} coefficient", float(lg["coefficient"][k]), beta[k], 1e-5)
                close(f"{what} logistic {term} standard_error", float(lg["standard_error"][k]), se[k], 1e-5)
                close(f"{what} logistic {term} coefficient_lo", float(lg["coefficient_lo"][k]), beta[k] - Z975 * se[k], 1e-5)
                close(f"{what} logistic {term} p_value", float(lg["p_value"][k]),
                      math.erfc(abs(beta[k] / se[k]) / math.sqrt(2)), 1e-5)
    if FAILURES:
        for line in FAILURES:
            print(line)
        print(f"check_intervals: {len(FAILURES)} of {CHECKS[0]} checks failed")
        return 1
    print(f"check_intervals: ok ({CHECKS[0]} checks)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
