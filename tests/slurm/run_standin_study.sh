#!/bin/bash
# The CI half of the Slurm test (ctest app_study_slurm_standin): the same cell and merge path as
# a real Slurm array, with a local stand-in for sbatch (sbatch_standin.sh) that runs each job
# and each array task in turn, as Slurm's batch step would, with SLURM_ARRAY_TASK_ID set.
# tests/slurm/run_slurm_study.sh does the same on a real single-node Slurm (too slow to bring
# up in CI; its last result is in docs/studies.md).
#
#  1. the tiny study of tiny_study.sh (4 cells) runs in one process: kdscope study --out local;
#  2. kdscope study --slurm writes the scripts; submit.sh submits them to the stand-in, which
#     runs the teacher job, the 4 array tasks and the merge job;
#  3. the merged summary equals the one-process one exactly (compare_summaries.py says why);
#  4. submitting again runs nothing (every unit is skipped; no run file is rewritten);
#  5. with one cell's run file deleted and another's cut short, --merge exits 1 naming both,
#     --cell reruns each, and the merged summary is again the same;
#  6. a cell before its teacher, an unknown cell, bad Slurm options: refused, named.
#
# Usage: run_standin_study.sh KDSCOPE PYTHON SOURCE_DIR WORK_DIR
set -eu
exe=$1
python=$2
src=$3
work=$4
rm -rf "$work"
mkdir -p "$work/bin"
. "$src/tests/slurm/tiny_study.sh"
make_tiny_study "$python" "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. One process, one thread per pool (the array tasks get --cpus-per-task 1, so the same).
start=$(date +%s)
"$exe" study "$work/study.json" --out "$work/local" --threads 1 --blas-threads 1 2> "$work/local.log" ||
  { cat "$work/local.log" >&2; fail "the one-process study failed"; }
echo "one-process study: $(($(date +%s) - start)) s"

# 6a. Before its teacher, a cell is refused (exit 1) and names the teacher's run file.
set +e
"$exe" study "$work/study.json" --out "$work/array" --cell 0 2> "$work/early.log"
rc=$?
set -e
[ $rc -eq 1 ] || fail "--cell before the teacher: exit $rc, expected 1"
grep -q "needs the study's teacher" "$work/early.log" || fail "--cell before the teacher: $(cat "$work/early.log")"

# 2. The scripts, then submit.sh through the stand-in.
"$exe" study "$work/study.json" --out "$work/array" --slurm --cpus-per-task 1 --time 10:00 --mem 1G \
  --partition debug > "$work/howto.txt"
grep -q "sh $work/array/slurm/submit.sh" "$work/howto.txt" || fail "no submit line in: $(cat "$work/howto.txt")"
for f in teacher.sbatch cells.sbatch merge.sbatch submit.sh; do
  [ -f "$work/array/slurm/$f" ] || fail "--slurm wrote no $f"
  bash -n "$work/array/slurm/$f" || fail "$f is not a valid shell script"
done
grep -q '^#SBATCH --array=0-3$' "$work/array/slurm/cells.sbatch" || fail "cells.sbatch has no --array=0-3"
ln -s "$src/tests/slurm/sbatch_standin.sh" "$work/bin/sbatch"
export SBATCH_STANDIN_STATE="$work/standin"
start=$(date +%s)
PATH="$work/bin:$PATH" sh "$work/array/slurm/submit.sh" > "$work/submit.log"
echo "array through the stand-in: $(($(date +%s) - start)) s"
cat "$work/submit.log"
for job in 1000 1001 1002; do # teacher, array, merge
  [ "$(cat "$SBATCH_STANDIN_STATE/$job.status")" = 0 ] ||
    { tail -n 20 "$work"/array/slurm/logs/* >&2; fail "job $job: $(cat "$SBATCH_STANDIN_STATE/$job.status")"; }
done
[ "$(wc -l < "$SBATCH_STANDIN_STATE/1001.tasks")" -eq 4 ] || fail "the array ran $(cat "$SBATCH_STANDIN_STATE/1001.tasks")"
for i in 0 1 2 3; do
  log="$work/array/slurm/logs/cell-$i-1001.out"
  grep -q "kdscope study cell $i on" "$log" || fail "no log of array task $i at $log"
done
grep -q "all 4 cells complete" "$work/array/slurm/logs/merge-1002.out" || fail "merge: $(cat "$work/array/slurm/logs/merge-1002.out")"

# 3. The same summary.
"$python" "$src/tests/slurm/compare_summaries.py" "$work/local/study_summary.json" \
  "$work/array/study_summary.json" --cells 4

# 4. Again: nothing runs.
stamp() { find "$work/array/teacher" "$work/array/cells" -name run.h5 -printf '%p %T@\n' | sort; }
before=$(stamp)
PATH="$work/bin:$PATH" sh "$work/array/slurm/submit.sh" > /dev/null
[ "$(stamp)" = "$before" ] || fail "a second submission rewrote run files"
grep -q "complete already, skipped" "$work/array/slurm/logs/teacher-1003.out" || fail "the teacher ran again"
for i in 0 1 2 3; do
  grep -q "complete already, skipped" "$work/array/slurm/logs/cell-$i-1004.out" || fail "cell $i ran again"
done

# 5. A missing cell and a broken one: --merge names them (exit 1), --cell reruns them.
cells=$(ls "$work/array/cells")
first=$(echo "$cells" | sed -n 1p)
third=$(echo "$cells" | sed -n 3p)
rm "$work/array/cells/$first/run.h5"
head -c 3000 "$work/local/cells/$third/run.h5" > "$work/array/cells/$third/run.h5"
set +e
"$exe" study "$work/study.json" --out "$work/array" --merge 2> "$work/merge.log"
rc=$?
set -e
[ $rc -eq 1 ] || fail "--merge with two cells not complete: exit $rc, expected 1"
grep -q "2 of 4 cells are not complete" "$work/merge.log" || fail "merge said: $(cat "$work/merge.log")"
grep -q "$first: missing" "$work/merge.log" || fail "merge did not name $first: $(cat "$work/merge.log")"
grep -q "$third: incomplete" "$work/merge.log" || fail "merge did not name $third: $(cat "$work/merge.log")"
for c in "$first" "$third"; do
  "$exe" study "$work/study.json" --out "$work/array" --cell "$c" --threads 1 --blas-threads 1 2>> "$work/rerun.log"
done
"$exe" study "$work/study.json" --out "$work/array" --merge
"$python" "$src/tests/slurm/compare_summaries.py" "$work/local/study_summary.json" \
  "$work/array/study_summary.json" --cells 4

# 6b. Bad input: exit 2, naming what is wrong.
set +e
"$exe" study "$work/study.json" --out "$work/array" --cell 7 2> "$work/bad.log"; rc1=$?
"$exe" study "$work/study.json" --out "$work/array" --slurm --time "2 hours" 2>> "$work/bad.log"; rc2=$?
"$exe" study "$work/study.json" --out "$work/array" --partition debug 2>> "$work/bad.log"; rc3=$?
set -e
[ $rc1 -eq 2 ] && [ $rc2 -eq 2 ] && [ $rc3 -eq 2 ] || fail "bad input exits $rc1 $rc2 $rc3, expected 2 2 2"
grep -q "\-\-cell '7': no such cell; the study has 4 cells, 0 to 3" "$work/bad.log" || fail "$(cat "$work/bad.log")"
grep -q "\-\-time '2 hours': not a Slurm time limit" "$work/bad.log" || fail "$(cat "$work/bad.log")"
grep -q "\-\-partition requires \-\-slurm" "$work/bad.log" || fail "$(cat "$work/bad.log")"
echo "stand-in Slurm study: all checks passed"
