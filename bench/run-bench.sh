#!/usr/bin/env bash
# Runs the distillation-step benchmark in C++ (LibTorch) and in Python (PyTorch) in one
# session, with the same models and thread settings, and prints the C++/Python ratios.
#   bench/run-bench.sh [build dir]      (default build/release)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build/release}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

for policy in ACTIVE PASSIVE; do
  echo "== C++ (OMP_WAIT_POLICY=$policy)" >&2
  OMP_WAIT_POLICY=$policy "$BUILD/bench/bench_distill_step" --benchmark_format=json \
    --benchmark_out="$OUT/cpp_$policy.json" --benchmark_out_format=json >/dev/null
  for size in 0 1; do
    for threads in 1 2; do
      echo "== Python size $size threads $threads (OMP_WAIT_POLICY=$policy)" >&2
      OMP_WAIT_POLICY=$policy /usr/bin/python3 "$ROOT/bench/distill_step.py" --size $size \
        --threads $threads --seconds 2 >>"$OUT/py_$policy.jsonl"
    done
  done
done

/usr/bin/python3 - "$OUT" <<'PY'
import json, sys, os, re
out = sys.argv[1]
print(f"{'policy':8} {'size':>4} {'torch thr':>9} {'blas thr':>8} {'C++ ex/s':>10} {'Python ex/s':>12} {'C++/Py':>7}")
for policy in ("ACTIVE", "PASSIVE"):
    py = {}
    for line in open(os.path.join(out, f"py_{policy}.jsonl")):
        r = json.loads(line)
        py[(r["size"], r["threads"])] = r["examples_per_s"]
    for b in json.load(open(os.path.join(out, f"cpp_{policy}.json")))["benchmarks"]:
        m = re.search(r"size:(\d+)/torch_threads:(\d+)/blas_threads:(\d+)", b["name"])
        size, tt, bt = map(int, m.groups())
        c = b["examples_per_s"]
        p = py.get((size, tt))
        print(f"{policy:8} {size:>4} {tt:>9} {bt:>8} {c:>10.0f} {p:>12.0f} {c / p:>7.2f}")
PY
