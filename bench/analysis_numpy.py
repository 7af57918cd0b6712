#!/usr/bin/python3
"""Plain NumPy baselines for the analysis benchmarks (bench/run-analysis-bench.sh).

  analysis_numpy.py cka-data DIR N LAYERS WIDTH     write DIR/{teacher,student}.f32 ([N, LAYERS, WIDTH])
  analysis_numpy.py cka DIR N LAYERS WIDTH [KDSCOPE_JSON]
        the LAYERS x LAYERS linear CKA matrix in float64, pair by pair, with the formula of
        ANALYSES.md (each layer's ||X'X||_F computed once); compared with kdscope's matrix
  analysis_numpy.py run RUN.h5
        the analyses `kdscope analyze` computes from the run file alone (task metrics, linear,
        RBF and minibatch CKA, residual, attention entropy and head JS, w and class geometry),
        in NumPy, timed per part. Prints one JSON line.

Written for speed comparison with the same formulas; it is not the reference for correctness
(the C++ tests are).
"""
import json
import sys
import time

import numpy as np


def centred(x):
    x = x.astype(np.float64)
    return x - x.mean(axis=0)


def linear_cka_matrix(t, s):
    """t: [n, Lt, D], s: [n, Ls, D] -> [Lt, Ls] (plain formula)."""
    lt, ls = t.shape[1], s.shape[1]
    xs = [centred(t[:, i, :]) for i in range(lt)]
    ys = [centred(s[:, j, :]) for j in range(ls)]
    nx = [np.linalg.norm(x.T @ x) for x in xs]
    ny = [np.linalg.norm(y.T @ y) for y in ys]
    out = np.empty((lt, ls))
    for i in range(lt):
        for j in range(ls):
            out[i, j] = np.linalg.norm(ys[j].T @ xs[i]) ** 2 / (nx[i] * ny[j])
    return out


def rbf_kernel(x, fraction):
    x = centred(x)
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0)
    iu = np.triu_indices(len(x), 1)
    sigma = fraction * np.median(np.sqrt(d2[iu]))
    k = np.exp(-d2 / (2 * sigma * sigma))
    r = k.mean(1)
    return k - r[:, None] - r[None, :] + k.mean()


def rbf_cka_matrix(t, s, n, fraction):
    kt = [rbf_kernel(t[:n, i, :], fraction) for i in range(t.shape[1])]
    out = np.empty((t.shape[1], s.shape[1]))
    for j in range(s.shape[1]):
        l = rbf_kernel(s[:n, j, :], fraction)
        for i, k in enumerate(kt):
            out[i, j] = (k * l).sum() / np.sqrt((k * k).sum() * (l * l).sum())
    return out


def hsic1(k, l):
    n = len(k)
    k = k.copy()
    l = l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    return (np.trace(k @ l) + k.sum() * l.sum() / ((n - 1) * (n - 2)) - 2 / (n - 2) * (k.sum(0) @ l.sum(1))) / (n * (n - 3))


def minibatch_cka_matrix(t, s, b):
    lt, ls = t.shape[1], s.shape[1]
    ct = [centred(t[:, i, :]) for i in range(lt)]
    cs = [centred(s[:, j, :]) for j in range(ls)]
    batches = len(t) // b
    xy = np.zeros((lt, ls))
    xx = np.zeros(lt)
    yy = np.zeros(ls)
    for q in range(batches):
        sl = slice(q * b, (q + 1) * b)
        ks = [x[sl] @ x[sl].T for x in ct]
        ls_ = [y[sl] @ y[sl].T for y in cs]
        for i, k in enumerate(ks):
            xx[i] += hsic1(k, k)
            for j, l in enumerate(ls_):
                xy[i, j] += hsic1(k, l)
        for j, l in enumerate(ls_):
            yy[j] += hsic1(l, l)
    return (xy / batches) / np.sqrt(np.outer(xx, yy) / batches**2)


def residual(x, y):
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    design = np.hstack([x, np.ones((len(x), 1))])
    w, *_ = np.linalg.lstsq(design, y, rcond=None)
    fit = design @ w
    sse = ((y - fit) ** 2).sum()
    cos = (fit * y).sum(1) / np.sqrt((fit * fit).sum(1) * (y * y).sum(1))
    return sse / y.size, sse / ((y - y.mean(0)) ** 2).sum(), (1 - cos).mean()


def softmax(z, t=1.0):
    z = z.astype(np.float64) / t
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def task_metrics(zt, zs, labels, c):
    p, q = softmax(zt), softmax(zs)
    out = {}
    for name, probs in (("teacher", p), ("student", q)):
        pred = probs.argmax(1)
        conf = probs.max(1)
        bins = np.clip(np.ceil(conf * 15).astype(int) - 1, 0, 14)
        ece = 0.0
        for b in range(15):
            m = bins == b
            if m.any():
                ece += m.mean() * abs((pred[m] == labels[m]).mean() - conf[m].mean())
        confusion = np.zeros((c, c), int)
        np.add.at(confusion, (labels, pred), 1)
        out[name] = (ece, confusion.diagonal() / np.maximum(confusion.sum(1), 1))
    agreement = (p.argmax(1) == q.argmax(1)).mean()
    kl = (p * (np.log(np.maximum(p, 1e-300)) - np.log(q))).sum(1).mean()
    right_t = p.argmax(1) == labels
    right_s = q.argmax(1) == labels
    lost = np.nonzero(right_t & ~right_s)[0]
    gained = np.nonzero(~right_t & right_s)[0]
    return agreement, kl, len(lost), len(gained)


def knowledge(zt, zs, labels, c, wt, ws, lam, temp):
    q = softmax(zs)
    qt, pt = softmax(zs, temp), softmax(zt, temp)
    idx = np.arange(len(labels))
    w = ((1 - lam) * (q[idx, labels] - 1) + lam * temp * (qt[idx, labels] - pt[idx, labels])) / (q[idx, labels] - 1)
    py = softmax(zt)[idx, labels]
    rank = lambda v: np.argsort(np.argsort(v))
    spearman = np.corrcoef(rank(w), rank(py))[0, 1]

    def cos_sim(wm):
        n = wm / np.linalg.norm(wm, axis=1, keepdims=True)
        return n @ n.T

    off = ~np.eye(c, dtype=bool)
    geometry = np.corrcoef(cos_sim(wt)[off], cos_sim(ws)[off])[0, 1]
    p = softmax(zt)
    sim = np.stack([p[labels == k].mean(0) for k in range(c)])
    return spearman, geometry, sim


def attention_stats(at, as_, tokens, block_t):
    lengths = (tokens[: len(at)] != 0).sum(1)
    mask_rows = np.arange(at.shape[-1])[None, :] < lengths[:, None]  # [n, Len]

    def normalised(a):
        a = a.astype(np.float64) * mask_rows[:, None, None, None, :]
        s = a.sum(-1, keepdims=True)
        return np.divide(a, s, out=np.zeros_like(a), where=s > 0)

    def xlogx(a):
        return np.where(a > 0, a * np.log(np.where(a > 0, a, 1)), 0.0)

    nt, ns = normalised(at), normalised(as_)
    rows = mask_rows.sum()
    entropy = -(xlogx(nt).sum(-1) * mask_rows[:, None, None, :]).sum((0, 3)) / rows
    # JS between every teacher head of the mapped block and every student head.
    js = []
    for i, j in enumerate(block_t):
        t_ = nt[:, j][:, :, None]  # [n, Ht, 1, Len, Len]
        s_ = ns[:, i][:, None, :]  # [n, 1, Hs, Len, Len]
        m = (t_ + s_) / 2
        h = -xlogx(m).sum(-1) + (xlogx(t_).sum(-1) + xlogx(s_).sum(-1)) / 2
        js.append((h * mask_rows[:, None, None, :]).sum((0, 3)) / rows)
    return entropy, js


def run_analyses(path):
    import h5py

    timings = {}
    with h5py.File(path, "r") as f:
        task_name = next(iter(f["tasks"]))
        task = f["tasks"][task_name]
        labels = task["eval/labels"][:]
        c = int(task.attrs["num_classes"])
        models = task["models"]
        students = [m for m in models if models[m].attrs["role"] == "student"]
        job = json.loads(f.attrs["job"])
        zt = models["teacher/eval/logits"][:]
        ht = models["teacher/eval/hidden"][:]
        wt = models["teacher/classifier/weight"][:]
        at = models["teacher/eval/attention"][:] if "eval/attention" in models["teacher"] else None
        tokens = task["eval/tokens"][:] if "eval/tokens" in task else None
        for name in students:
            m = models[name]
            zs, hs, ws = m["eval/logits"][:], m["eval/hidden"][:], m["classifier/weight"][:]
            spec = next(s for s in job["students"] if s["name"] == name)["objective"]
            lam, temp = spec["lambda"] or 0.7, spec["temperature"]

            def timed(key, fn):
                start = time.perf_counter()
                fn()
                timings[key] = timings.get(key, 0.0) + time.perf_counter() - start

            timed("task", lambda: task_metrics(zt, zs, labels, c))
            timed("knowledge", lambda: knowledge(zt, zs, labels, c, wt, ws, lam, temp))
            timed("cka", lambda: (linear_cka_matrix(ht, hs), rbf_cka_matrix(ht, hs, 1000, 0.8),
                                  minibatch_cka_matrix(ht, hs, 256)))
            lt_, ls_ = ht.shape[1] - 1, hs.shape[1] - 1
            pairs = [(i, (i * lt_) // ls_) for i in range(ls_ + 1)]
            timed("residual", lambda: [residual(hs[:, i, :], ht[:, j, :]) for i, j in pairs])
            if at is not None and "eval/attention" in m:
                blocks = [((i + 1) * lt_) // ls_ - 1 for i in range(ls_)]
                timed("attention", lambda: attention_stats(at, m["eval/attention"][:], tokens, blocks))
    timings["total"] = sum(timings.values())
    print(json.dumps({"impl": "numpy", "seconds": timings}))


def main(argv):
    mode = argv[1]
    if mode == "cka-data":
        out, n, layers, width = argv[2], int(argv[3]), int(argv[4]), int(argv[5])
        rng = np.random.default_rng(0)
        base = rng.standard_normal((n, width), dtype=np.float32)
        for name, mix in (("teacher", 0.9), ("student", 0.6)):
            h = np.empty((n, layers, width), np.float32)
            x = base.copy()
            for l in range(layers):
                x = mix * x + rng.standard_normal((n, width), dtype=np.float32)
                h[:, l, :] = x
            h.tofile(f"{out}/{name}.f32")
    elif mode == "cka":
        out, n, layers, width = argv[2], int(argv[3]), int(argv[4]), int(argv[5])
        t = np.fromfile(f"{out}/teacher.f32", np.float32).reshape(n, layers, width)
        s = np.fromfile(f"{out}/student.f32", np.float32).reshape(n, layers, width)
        start = time.perf_counter()
        m = linear_cka_matrix(t, s)
        seconds = time.perf_counter() - start
        result = {"impl": "numpy", "seconds": seconds}
        if len(argv) > 6:
            k = json.loads(open(argv[6]).read())
            result["kdscope_seconds"] = k["seconds"]
            result["max_abs_difference"] = float(np.abs(np.array(k["matrix"]).reshape(layers, layers) - m).max())
            result["numpy_over_kdscope"] = seconds / k["seconds"]
        print(json.dumps(result))
    elif mode == "run":
        run_analyses(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
