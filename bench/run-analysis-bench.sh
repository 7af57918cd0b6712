#!/usr/bin/env bash
# Analysis benchmarks (results in bench/README.md):
#  1. `kdscope analyze` on a 4000-example run (supersense, 4-layer teacher, 2-layer student;
#     bench/analysis_job.json): all analyses, then each analysis alone, against a plain NumPy
#     implementation of the analyses computed from the run file alone (analysis_numpy.py run);
#  2. the linear CKA layer matrix alone, 13 x 13 layers of width 768, N = 4000, against plain
#     NumPy (the formula pair by pair, float64).
#   bench/run-analysis-bench.sh [build dir] [threads]     (default build/release, 0 = all cores)
# Environment: RUN_DIR=DIR analyses a copy of an existing run folder (run.h5 and checkpoints/, e.g.
# one trained by an earlier call) instead of training bench/analysis_job.json, so that two
# builds can be timed on the same run; KEEP=FILE keeps a copy of the analysed run file (to
# compare two builds' results); QUICK=1 skips the NumPy baselines and part 2; PASSES="heads
# probes" times only those analyses alone (after all of them together).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build/release}"
THREADS="${2:-0}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
KDSCOPE="$BUILD/app/kdscope"
# The analysis' own time ("complete in S s"), without the process start (loading LibTorch, ~1 s).
seconds() { "$@" >/dev/null 2>"$OUT/last.log" || { cat "$OUT/last.log" >&2; exit 1; }; sed -n 's/.*complete in \([0-9.]*\) s.*/\1/p' "$OUT/last.log"; }

echo "== 1. kdscope analyze on a 4000-example run" >&2
if [[ -n "${RUN_DIR:-}" ]]; then
  cp -r "$RUN_DIR" "$OUT/run"
else
  "$KDSCOPE" run "$ROOT/bench/analysis_job.json" --out "$OUT/run" >/dev/null 2>&1
fi
RUN="$OUT/run/run.h5"
echo "all $(seconds "$KDSCOPE" analyze "$RUN" --threads "$THREADS")" | tee "$OUT/analyze.txt" >&2
for only in ${PASSES:-task knowledge cka residual attention heads probes}; do
  echo "$only $(seconds "$KDSCOPE" analyze "$RUN" --threads "$THREADS" --only "$only")" | tee -a "$OUT/analyze.txt" >&2
done
if [[ -n "${KEEP:-}" ]]; then
  cp "$RUN" "$KEEP"
fi
if [[ -n "${QUICK:-}" ]]; then
  exit 0
fi
/usr/bin/python3 "$ROOT/bench/analysis_numpy.py" run "$RUN" | tee "$OUT/numpy_run.json" >&2

echo "== 2. linear CKA, 13 x 13 layers, width 768, N = 4000" >&2
/usr/bin/python3 "$ROOT/bench/analysis_numpy.py" cka-data "$OUT" 4000 13 768
"$BUILD/bench/bench_analysis_cka" "$OUT" 4000 13 768 "$THREADS" >"$OUT/cka_kdscope.json"
/usr/bin/python3 "$ROOT/bench/analysis_numpy.py" cka "$OUT" 4000 13 768 "$OUT/cka_kdscope.json" | tee "$OUT/cka.json" >&2

/usr/bin/python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
cpp = dict(line.split() for line in open(os.path.join(out, "analyze.txt")))
cpp = {k: float(v) for k, v in cpp.items()}
py = json.load(open(os.path.join(out, "numpy_run.json")))["seconds"]
print(f"{'analysis':10} {'kdscope s':>10} {'numpy s':>9} {'numpy/kdscope':>14}")
for k in ("task", "knowledge", "cka", "residual", "attention", "heads", "probes"):
    p = py.get(k)
    print(f"{k:10} {cpp[k]:>10.2f} {p if p is not None else float('nan'):>9.2f} {p / cpp[k] if p else float('nan'):>14.2f}")
file_based = sum(cpp[k] for k in ("task", "knowledge", "cka", "residual", "attention"))
print(f"{'all':10} {cpp['all']:>10.2f}   (file-based part: kdscope {file_based:.2f} s as separate runs, numpy {py['total']:.2f} s, "
      f"ratio {py['total'] / file_based:.2f})")
c = json.load(open(os.path.join(out, "cka.json")))
print(f"CKA 13x13 width 768 N 4000: kdscope {c['kdscope_seconds']:.2f} s, numpy {c['seconds']:.2f} s, "
      f"numpy/kdscope {c['numpy_over_kdscope']:.2f}, max |difference| {c['max_abs_difference']:.2e}")
PY
