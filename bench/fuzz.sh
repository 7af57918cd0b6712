#!/usr/bin/env bash
# Fuzzing at scale (issue #11; docs/run-format.md, "Fuzzing at scale"; bench/README.md).
#
#   bench/fuzz.sh [BUILD_DIR [WORK_DIR]]
#
# 1. Seeds: small real run files made by `kdscope run` on two tiny jobs (a synthetic
#    hierarchy with the four knowledge-control students, MLPs; a polarity text job with
#    transformers, attention maps and texts). `kdscope run` analyses them at its end (with
#    the checkpoints beside them, so heads and probes too); a copy of each analysed again
#    by `kdscope analyze` away from its checkpoints (heads and probes skipped, recorded in
#    `skipped`) makes four seed files.
# 2. RUNS corrupted copies (fuzz_mutate_runs.py: truncation, bit flips, lying dimensions,
#    wrong shapes, wrong types, deleted objects, link cycles, lying values, mixed), made and
#    run in chunks of CHUNK through fuzz_harness (the code of `kdscope info`, the window's
#    loader and views, and `kdscope analyze`), each consumer in a forked child with a limit
#    of LIMIT seconds. Resumable: a finished chunk leaves WORK_DIR/runs/done.N and is skipped.
#    Files of a chunk are deleted after it, except those with a crash, hang or unnamed
#    refusal (kept for inspection).
# 3. SAMPLE of the first chunk's files through the real `kdscope info` and `kdscope
#    analyze` executables, to check that the harness classifies as they do.
# 4. JOBS mutated job files (fuzz_mutate_jobs.py) through core::loadJobFile, same limits.
# 5. The summary (fuzz_summary.py): counts per kind and outcome, and sanitizer reports
#    when the build is a sanitizer build.
#
# Environment: RUNS (10000), JOBS (1000), CHUNK (1500), LIMIT (10), SAMPLE (200), PAR (2
# harnesses side by side), LOCK (a
# file to flock around each chunk, e.g. /tmp/kdscope-build.lock on a shared machine).
# For an AddressSanitizer build (cmake --preset asan), reports go to WORK_DIR/sanitizer/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$(cd "${1:-$root/build/release}" && pwd)
work=${2:-$build/fuzz}
RUNS=${RUNS:-10000}
JOBS=${JOBS:-1000}
CHUNK=${CHUNK:-1500}
LIMIT=${LIMIT:-10}
SAMPLE=${SAMPLE:-200}
PAR=${PAR:-2}
LOCK=${LOCK:-}
py=/usr/bin/python3
kdscope=$build/app/kdscope
harness=$build/bench/fuzz_harness
mkdir -p "$work/seeds" "$work/runs" "$work/jobs" "$work/sanitizer"
work=$(cd "$work" && pwd)

# The harnesses of one chunk share the lock (flock -s), so two of them run side by side
# while builds (which take it exclusively) wait.
locked_shared() {
  if [ -n "$LOCK" ]; then flock -s "$LOCK" "$@"; else "$@"; fi
}
locked() {
  if [ -n "$LOCK" ]; then flock "$LOCK" "$@"; else "$@"; fi
}

# Sanitizer builds: every process (harness children, the probe's grandchildren) logs its
# report to its own file; leak checks off (children leave with _exit).
export ASAN_OPTIONS="log_path=$work/sanitizer/asan:detect_leaks=0:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="log_path=$work/sanitizer/ubsan:print_stacktrace=1:${UBSAN_OPTIONS:-}"
export KDSCOPE_DATA_DIR=${KDSCOPE_DATA_DIR:-$HOME/.cache/kdscope/data}
export OMP_WAIT_POLICY=PASSIVE

# ---- 1. seeds ------------------------------------------------------------------------------
seeds=()
if [ ! -f "$work/seeds/done" ]; then
  cat >"$work/seeds/hierarchy.json" <<'EOF'
{
  "name": "fuzz-hierarchy", "seed": 5,
  "tasks": [{"name": "synthetic_hierarchy", "super_classes": 2, "classes_per_super": 2, "dim": 8,
             "examples_per_class": 40}],
  "teacher": {"architecture": {"type": "mlp", "hidden": [16, 8]}, "training": {"epochs": 2, "batch_size": 32}},
  "knowledge_controls": {"architecture": {"type": "mlp", "hidden": [4]}, "training": {"epochs": 2, "batch_size": 32}},
  "recording": {"log_every": 1}
}
EOF
  cat >"$work/seeds/text.json" <<'EOF'
{
  "name": "fuzz-text", "seed": 6,
  "tasks": [{"name": "polarity", "max_examples": 160, "max_len": 12, "vocab_size": 300, "min_freq": 1}],
  "teacher": {"architecture": {"type": "transformer", "layers": 2, "heads": 2, "width": 16, "ffn": 32},
              "training": {"epochs": 1, "batch_size": 32}},
  "students": [{"name": "kd", "architecture": {"type": "transformer", "layers": 1, "heads": 2, "width": 8, "ffn": 16},
                "training": {"epochs": 1, "batch_size": 32}, "objective": {"lambda": 0.7, "temperature": 4.0}}],
  "recording": {"attention_examples": 6, "token_hidden_examples": 4, "log_every": 1}
}
EOF
  for name in hierarchy text; do
    rm -rf "$work/seeds/$name"
    locked "$kdscope" run "$work/seeds/$name.json" --out "$work/seeds/$name" --threads 1 >/dev/null
    cp "$work/seeds/$name/run.h5" "$work/seeds/$name.h5"
    cp "$work/seeds/$name/run.h5" "$work/seeds/$name-analysed.h5"
    locked "$kdscope" analyze "$work/seeds/$name-analysed.h5" --threads 1 2>/dev/null
  done
  touch "$work/seeds/done"
fi
for name in hierarchy hierarchy-analysed text text-analysed; do
  seeds+=("$work/seeds/$name.h5")
done
ls -l "${seeds[@]}"

# ---- 2, 3. corrupted run files ----------------------------------------------------------------
start_all=$(date +%s)
for ((start = 0; start < RUNS; start += CHUNK)); do
  count=$((RUNS - start < CHUNK ? RUNS - start : CHUNK))
  [ -f "$work/runs/done.$start" ] && continue
  dir="$work/runs/c$start"
  rm -rf "$dir"
  t0=$(date +%s)
  $py "$here/fuzz_mutate_runs.py" "$dir" "$start" "$count" "${seeds[@]}"
  t1=$(date +%s)
  rm -f "$dir/out.tsv"
  # PAR harnesses side by side, each on every PAR-th file.
  for ((w = 0; w < PAR; w++)); do
    awk -v n="$PAR" -v w="$w" 'NR % n == w' "$dir/manifest.tsv" >"$dir/manifest.$w"
    locked_shared "$harness" runs "$dir/manifest.$w" "$dir/out.$w.tsv" --limit "$LIMIT" &
  done
  wait
  cat "$dir"/out.*.tsv >"$dir/out.tsv"
  rm -f "$dir"/out.*.tsv "$dir"/manifest.[0-9]*
  t2=$(date +%s)
  if [ "$start" -eq 0 ] && [ "$SAMPLE" -gt 0 ]; then
    # The real executables on a sample of the chunk, each on its own copy.
    rm -f "$work/runs/exe.tsv"
    shuf -n "$SAMPLE" --random-source=<(yes) "$dir/manifest.tsv" | cut -f1,2 | while IFS=$'\t' read -r f kind; do
      for cmd in info analyze; do
        cp "$f" "$f.exe.h5"
        extra=()
        [ "$cmd" = analyze ] && extra=(--threads 1)
        set +e
        msg=$(locked timeout -s KILL $((LIMIT + 60)) "$kdscope" "$cmd" "$f.exe.h5" "${extra[@]}" 2>&1 >/dev/null)
        code=$?
        set -e
        rm -f "$f.exe.h5"
        printf '%s\t%s\t%s\t%s\t%s\n' "$f" "$kind" "$cmd" "$code" \
          "$(printf '%s' "$msg" | grep -v '^\[' | tail -n 3 | tr '\t\n' '  ' | cut -c1-400)" >>"$work/runs/exe.tsv"
      done
    done
  fi
  # Keep the files that need a look; drop the rest.
  keep=$(awk -F'\t' '$4 == "crash" || $4 == "hang" || $4 == "unnamed" {print $1}' "$dir/out.tsv" | sort -u)
  for f in "$dir"/*.h5; do
    grep -qxF "$f" <<<"$keep" || rm -f "$f"
  done
  echo "chunk $start: $count files, made in $((t1 - t0)) s, run in $((t2 - t1)) s"
  echo "$count $((t1 - t0)) $((t2 - t1))" >"$work/runs/done.$start"
done
echo "run files: $(($(date +%s) - start_all)) s"

# ---- 4. job files ------------------------------------------------------------------------------
bases=("$root/samples/hierarchy.json" "$root/samples/quickstart.json" "$root/samples/knowledge.json"
       "$work/seeds/text.json")
JCHUNK=${JCHUNK:-250}
for ((start = 0; start < JOBS; start += JCHUNK)); do
  count=$((JOBS - start < JCHUNK ? JOBS - start : JCHUNK))
  [ -f "$work/jobs/done.$start" ] && continue
  dir="$work/jobs/c$start"
  rm -rf "$dir"
  t0=$(date +%s)
  $py "$here/fuzz_mutate_jobs.py" "$dir" "$start" "$count" "${bases[@]}"
  t1=$(date +%s)
  rm -f "$dir/out.tsv"
  locked "$harness" jobs "$dir/manifest.tsv" "$dir/out.tsv" --limit "$LIMIT"
  t2=$(date +%s)
  keep=$(awk -F'\t' '$4 == "crash" || $4 == "hang" || $4 == "unnamed" {print $1}' "$dir/out.tsv" | sort -u)
  for f in "$dir"/*.json; do
    grep -qxF "$f" <<<"$keep" || rm -f "$f"
  done
  echo "job chunk $start: $count files, made in $((t1 - t0)) s, run in $((t2 - t1)) s"
  echo "$count $((t1 - t0)) $((t2 - t1))" >"$work/jobs/done.$start"
done

# ---- 5. summary ---------------------------------------------------------------------------------
$py "$here/fuzz_summary.py" "$work" | tee "$work/summary.md"
