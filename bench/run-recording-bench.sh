#!/usr/bin/env bash
# Recording benchmarks (results in bench/README.md):
#  1. write throughput of KDScope's recording (bench_recording) against a plain h5py write
#     of the same arrays with the same chunks and compression (recording_h5py.py);
#  2. recording overhead as a fraction of job time at default settings: the same job run
#     with the default recording, without per-example records, and with recording cut to the
#     minimum (logs every 10^6 steps, no hidden states, no attention, no per-example records),
#     best of N runs each, interleaved ("analyze": false: the analysis after a job is not
#     recording, and it would do less on the smaller files).
#   bench/run-recording-bench.sh [build dir] [runs]     (default build/release, 2)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build/release}"
RUNS="${2:-2}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

echo "== write throughput (20000 eval examples: logits, hidden [N, 5, 256], attention [64, 4, 4, 64, 64])" >&2
"$BUILD/bench/bench_recording" "$OUT" 20000 3 | tee "$OUT/write.jsonl"
/usr/bin/python3 "$ROOT/bench/recording_h5py.py" "$OUT" 20000 3 | tee -a "$OUT/write.jsonl"
echo "== writer memory: the same at 5000 examples (the peak it holds beyond the arrays should not grow with N)" >&2
"$BUILD/bench/bench_recording" "$OUT" 5000 1 | tee "$OUT/write_small.jsonl"

echo "== recording overhead (polarity, default teacher and students, default recording)" >&2
job() { # $1: recording object
  cat <<JSON
{"name": "overhead", "seed": 1, "tasks": ["polarity"], "analyze": false,
 "students": [{"name": "ce"}, {"name": "kd", "objective": {"lambda": 0.5, "temperature": 2.0}}],
 "recording": $1}
JSON
}
job '{}' >"$OUT/default.json"
job '{"example_records": false}' >"$OUT/no_records.json"
job '{"log_every": 1000000, "hidden": false, "attention_examples": 0, "example_records": false}' >"$OUT/minimal.json"
# Wall time and CPU time (user + system): on a shared machine the CPU time is the fairer
# measure of the job's own work (the job runs one intra-op thread and one BLAS thread).
for run in $(seq "$RUNS"); do
  for kind in default no_records minimal; do
    rm -rf "$OUT/run_$kind"
    /usr/bin/time -f "$kind %e %U %S" -a -o "$OUT/times.txt" \
      "$BUILD/app/kdscope" run "$OUT/$kind.json" --out "$OUT/run_$kind" --threads 1 >/dev/null 2>"$OUT/log_$kind.txt"
    tail -1 "$OUT/times.txt" >&2
  done
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = [json.loads(line) for line in open(os.path.join(out, "write.jsonl"))]
ours = rows[0]
for r in rows:
    print(f"{r['writer']:>24}: {r['mb_per_s']:7.1f} MB/s wall, {r['cpu_mb_per_s']:7.1f} MB/s CPU "
          f"({r['seconds']:.3f} s, {r['cpu_seconds']:.3f} s CPU, file {r['file_bytes'] / 1e6:.1f} MB); "
          f"kdscope/this: {ours['mb_per_s'] / r['mb_per_s']:.2f} wall, {ours['cpu_mb_per_s'] / r['cpu_mb_per_s']:.2f} CPU")
small = json.loads(open(os.path.join(out, "write_small.jsonl")).readline())
print(f"writer memory beyond the arrays: {small['writer_peak_extra_mb']:.1f} MB at {small['examples']} examples "
      f"({small['raw_bytes'] / 1e6:.0f} MB raw), {ours['writer_peak_extra_mb']:.1f} MB at {ours['examples']} "
      f"({ours['raw_bytes'] / 1e6:.0f} MB raw)")
wall, cpu = {}, {}
for line in open(os.path.join(out, "times.txt")):
    kind, elapsed, user, system = line.split()
    wall.setdefault(kind, []).append(float(elapsed))
    cpu.setdefault(kind, []).append(float(user) + float(system))
for name, times in (("wall", wall), ("CPU", cpu)):
    d, r, m = min(times["default"]), min(times["no_records"]), min(times["minimal"])
    print(f"job {name} time: default recording {d:.1f} s, without per-example records {r:.1f} s, "
          f"minimal recording {m:.1f} s: recording overhead {(d - m) / d * 100:.1f}% of the default job's "
          f"time, of which per-example records {(d - r) / d * 100:.1f}%")
for kind in ("default", "no_records", "minimal"):
    size = os.path.getsize(os.path.join(out, f"run_{kind}", "run.h5"))
    print(f"run file ({kind}): {size / 1e6:.2f} MB")
PY
