#!/usr/bin/env bash
# The distillation step at one size, C++ (bench_step) against PyTorch eager from Python
# (distill_step.py), fp32 and bf16, interleaved in one session so that both see the same
# machine state. Prints every run, then the median examples/s of each and the ratios.
#   bench/run-step-bench.sh [build dir] [repeats] [-- size args]
# Default size: the issue #15 size (teacher 4,256,4,1024; student 2,128,2,512; len 64;
# batch 32; 60 steps), 2 threads. See bench/README.md, "Distillation step at any size".
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build/release}"
REPEATS="${2:-3}"
shift $(( $# >= 2 ? 2 : $# )) || true
[[ "${1:-}" == "--" ]] && shift
SIZE=("$@")
if [[ ${#SIZE[@]} -eq 0 ]]; then
  SIZE=(--teacher 4,256,4,1024 --student 2,128,2,512 --len 64 --batch 32 --steps 60)
fi
THREADS="${THREADS:-2}"
OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT
for ((r = 1; r <= REPEATS; ++r)); do
  for precision in fp32 bf16; do
    "$BUILD/bench/bench_step" "${SIZE[@]}" --threads "$THREADS" --blas-threads "$THREADS" \
      --precision "$precision" | tee -a "$OUT"
    /usr/bin/python3 "$ROOT/bench/distill_step.py" "${SIZE[@]}" --threads "$THREADS" \
      --precision "$precision" | tee -a "$OUT"
  done
done
/usr/bin/python3 - "$OUT" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    who = line.split()[0]
    precision = re.search(r"precision=(\S+)", line).group(1)
    runs.setdefault((who, precision), []).append(float(re.search(r"examples/s=([\d.]+)", line).group(1)))
med = {k: statistics.median(v) for k, v in runs.items()}
print(f"\n{'':8} {'precision':9} {'median ex/s':>11}  runs")
for (who, precision), v in sorted(runs.items()):
    print(f"{who:8} {precision:9} {med[(who, precision)]:>11.1f}  {' '.join(f'{x:.1f}' for x in v)}")
base = med.get(("python", "fp32"))
if base:
    for key in sorted(med):
        print(f"{key[0]} {key[1]} / python fp32 = {med[key] / base:.2f}")
PY
