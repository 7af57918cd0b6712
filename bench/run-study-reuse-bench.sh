#!/bin/bash
# The teacher's analyses copied once per study against computed in every cell (issue #15;
# bench/README.md, "Studies: the teacher analysed once").
#
#   bench/run-study-reuse-bench.sh BEFORE_KDSCOPE AFTER_KDSCOPE WORK [CELL...]
#
# BEFORE_KDSCOPE computes the teacher's analyses in every cell (main before the change, or
# AFTER with --no-teacher-reuse: set BEFORE_ARGS=--no-teacher-reuse); AFTER_KDSCOPE copies
# them from the teacher job's run file. The teacher job is trained and analysed once, by
# BEFORE, into WORK/before; WORK/after gets a copy of its folder, re-analysed by AFTER (so its
# results carry the inputs keys reuse checks; timed too). Then each cell (default all 9) runs
# as `kdscope study STUDY --out DIR --cell I` with BEFORE and with AFTER, interleaved (which
# goes first alternates), each under `nice -n $NICE` and GNU time. Output: WORK/times.tsv,
# one line per unit: which, unit, wall s, user s, sys s, the analysis seconds the run file
# records (sum over tasks of /tasks/<t>/analysis attr seconds), the 1-minute load average
# when it started, and whether the teacher's heads were reused.
set -euo pipefail
BEFORE=$(realpath "$1")
AFTER=$(realpath "$2")
WORK=$3
shift 3
CELLS=("$@")
if [ ${#CELLS[@]} -eq 0 ]; then
  CELLS=(0 1 2 3 4 5 6 7 8)
fi
STUDY=${STUDY:-samples/study-layers-heads.json}
NICE=${NICE:-10}
BEFORE_ARGS=${BEFORE_ARGS:-}
PY=/usr/bin/python3
mkdir -p "$WORK"
TIMES=$WORK/times.tsv
[ -f "$TIMES" ] || printf 'which\tunit\twall_s\tuser_s\tsys_s\tanalysis_s\tload1\treused\n' > "$TIMES"

# Sum of the analysis seconds of a run file's tasks, and whether the teacher's heads of its
# first task were copied.
analysis_of() {
  "$PY" - "$1" <<'EOF'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    total, reused = 0.0, "-"
    for t in f["tasks"]:
        a = f["tasks"][t].get("analysis")
        if a is not None and "seconds" in a.attrs:
            total += float(a.attrs["seconds"])
        h = f"tasks/{t}/analysis/teacher/head_importance"
        if reused == "-" and h in f:
            reused = "yes" if "reused_from" in f[h].attrs else "no"
    print(f"{total:.1f}\t{reused}")
EOF
}

run_unit() { # which unit run_file command...
  local which=$1 unit=$2 run=$3
  shift 3
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  local tf
  tf=$(mktemp)
  /usr/bin/time -f '%e\t%U\t%S' -o "$tf" nice -n "$NICE" "$@" > "$WORK/$which-$unit.log" 2>&1
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$which" "$unit" "$(cat "$tf")" "$(analysis_of "$run" | cut -f1)" "$load" \
    "$(analysis_of "$run" | cut -f2)" >> "$TIMES"
  rm -f "$tf"
  tail -n 1 "$TIMES"
}

if [ ! -f "$WORK/before/teacher/run.h5" ]; then
  run_unit before teacher "$WORK/before/teacher/run.h5" "$BEFORE" study "$STUDY" --out "$WORK/before" --teacher-only
fi
if [ ! -f "$WORK/after/teacher/run.h5" ]; then
  mkdir -p "$WORK/after"
  cp -r "$WORK/before/teacher" "$WORK/after/teacher"
  cp "$WORK/before/study.json" "$WORK/after/study.json"
  run_unit after teacher-reanalysis "$WORK/after/teacher/run.h5" "$AFTER" analyze "$WORK/after/teacher/run.h5"
fi
k=0
for c in "${CELLS[@]}"; do
  name=$("$BEFORE" study "$STUDY" --out "$WORK/before" --list 2>&1 | awk -v i="$c" '$2 == i {print $3; exit}')
  name=${name:-cell$c}
  b=(before "cell$c" "$WORK/before/cells/$name/run.h5" "$BEFORE" study "$STUDY" --out "$WORK/before" --cell "$c" $BEFORE_ARGS)
  a=(after "cell$c" "$WORK/after/cells/$name/run.h5" "$AFTER" study "$STUDY" --out "$WORK/after" --cell "$c")
  if [ $((k % 2)) -eq 0 ]; then
    run_unit "${b[@]}"
    run_unit "${a[@]}"
  else
    run_unit "${a[@]}"
    run_unit "${b[@]}"
  fi
  k=$((k + 1))
done
