#!/usr/bin/env bash
# The main job: runs the sample study (analysed at the end) and opens the workbench on its
# run file. Without a display it stays headless: it runs the study, prints the summary and
# writes every figure with its CSV and an index (kdscope export).
#   scripts/run-main.sh [path/to/kdscope]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KDSCOPE="${1:-$ROOT/build/release/app/kdscope}"
OUT="${KDSCOPE_OUT:-$ROOT/out}"
JOB="${KDSCOPE_MAIN_JOB:-$ROOT/samples/study.json}"
NAME="$(basename "$JOB" .json)"

printf '\n== Main job: %s -> %s/%s/run.h5\n' "$JOB" "$OUT" "$NAME"
"$KDSCOPE" run "$JOB" --out "$OUT/$NAME"
"$KDSCOPE" info "$OUT/$NAME/run.h5"

if [[ -n "${DISPLAY:-}" || -n "${WAYLAND_DISPLAY:-}" ]]; then
  printf '\n== Opening the workbench on %s\n' "$OUT/$NAME/run.h5"
  exec "$KDSCOPE" "$OUT/$NAME/run.h5"
else
  printf '\n== No display: headless. Writing every figure of the run to %s/%s/figures\n' "$OUT" "$NAME"
  "$KDSCOPE" export "$OUT/$NAME/run.h5" --figure all --format pdf,png --out "$OUT/$NAME/figures" --index md
  printf '== Run file: %s/%s/run.h5; figures and index: %s/%s/figures/index.md\n' "$OUT" "$NAME" "$OUT" "$NAME"
fi
