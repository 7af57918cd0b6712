#!/bin/sh
# Data-parallel failures (issue #16, docs/distributed.md "Failures"): whichever rank fails,
# or is killed, or the launcher is cancelled, the job stops on every rank within a bounded
# time (each case runs under `timeout 120`; a hang fails the test), `kdscope run --nproc 2`
# exits non-zero naming the rank, and rank 0's run file is kept with status "failed" (or
# "cancelled") and a message naming the rank. KDSCOPE_TEST_FAIL_* are for tests only
# (core/distill/trainer.cpp).
#
# Usage: distributed_failure.sh KDSCOPE PYTHON SOURCE_DIR WORK_DIR
set -u
exe=$1
python=$2
src=$3
work=$4
rm -rf "$work"
mkdir -p "$work"
"$python" "$src/tests/app/distributed_job.py" 7 > "$work/job.json"
status=0

fail() { echo "FAIL: $*"; status=1; }

# check_status DIR STATUS PATTERN: the run file's status and that its message matches PATTERN.
check_status() {
  "$python" - "$1/run.h5" "$2" "$3" <<'PY'
import re, sys, h5py
path, want, pattern = sys.argv[1:4]
with h5py.File(path, "r") as f:
    got, message = f.attrs["status"], f.attrs["status_message"]
got = got.decode() if isinstance(got, bytes) else got
message = message.decode() if isinstance(message, bytes) else message
print(f"{path}: status {got!r}, message {message!r}")
sys.exit(0 if got == want and re.search(pattern, message) else 1)
PY
}

# run_case NAME EXPECTED_EXIT ENV...: runs the job with --nproc 2 under the environment.
run_case() {
  name=$1
  shift
  start=$(date +%s)
  env "$@" timeout 120 "$exe" run "$work/job.json" --out "$work/$name" --threads 1 --nproc 2 \
    > "$work/$name.out" 2> "$work/$name.err"
  code=$?
  end=$(date +%s)
  echo "== $name: exit $code after $((end - start)) s"
  tail -n 3 "$work/$name.err"
  [ "$code" -ne 124 ] || fail "$name: still running after 120 s (a hang)"
  [ "$code" -ne 0 ] || fail "$name: exit code 0 for a failed job"
}

# 1. Rank 1 fails (a JobError) before its 5th step of the teacher.
run_case rank1_fails KDSCOPE_TEST_FAIL_RANK=1 KDSCOPE_TEST_FAIL_STEP=5
grep -q "rank 1 of 2 failed" "$work/rank1_fails.err" || fail "rank1_fails: the launcher does not name rank 1"
check_status "$work/rank1_fails" failed "rank 1 failed: .*injected failure at step 5" || fail "rank1_fails: run file status"

# 2. Rank 1 is killed (SIGKILL) before its 5th step: no notice, a broken connection.
run_case rank1_killed KDSCOPE_TEST_FAIL_RANK=1 KDSCOPE_TEST_FAIL_STEP=5 KDSCOPE_TEST_FAIL_MODE=kill
grep -q "rank 1 of 2 failed (killed by signal 9" "$work/rank1_killed.err" ||
  fail "rank1_killed: the launcher does not name rank 1 and its signal"
check_status "$work/rank1_killed" failed "rank 0 lost contact with the other ranks" || fail "rank1_killed: run file status"

# 3. Rank 0 fails in a student (before student kd's 3rd step): rank 1 is told.
run_case rank0_fails KDSCOPE_TEST_FAIL_RANK=0 KDSCOPE_TEST_FAIL_STEP=3 KDSCOPE_TEST_FAIL_MODEL=kd
grep -q "rank 0 of 2 failed (exit code 1)" "$work/rank0_fails.err" || fail "rank0_fails: the launcher does not name rank 0"
check_status "$work/rank0_fails" failed "model 'kd'.*injected failure at step 3" || fail "rank0_fails: run file status"

# 4. Cancelled: SIGTERM to the launcher reaches both ranks; the run file says "cancelled".
# (A job of 400 epochs, which takes minutes: cancelled a second after it starts.)
"$python" "$src/tests/app/distributed_job.py" 7 400 > "$work/long.json"
start=$(date +%s)
timeout 120 "$exe" run "$work/long.json" --out "$work/cancelled" --threads 1 --nproc 2 \
  > "$work/cancelled.out" 2> "$work/cancelled.err" &
pid=$!
# Wait until training has started (rank 0 wrote the run file), then cancel.
i=0
while [ ! -f "$work/cancelled/run.h5" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
sleep 1
kill -TERM $pid
wait $pid
code=$?
echo "== cancelled: exit $code after $(( $(date +%s) - start )) s"
[ "$code" -ne 124 ] || fail "cancelled: still running after 120 s"
[ "$code" -ne 0 ] || fail "cancelled: exit code 0"
check_status "$work/cancelled" cancelled "cancel" || fail "cancelled: run file status"
grep -q "kdscope run: cancelled (every rank was told)" "$work/cancelled.err" || fail "cancelled: the launcher does not say so"
exit $status
