#!/bin/bash
# A study as a job array on a real single-node Slurm, brought up and torn down here, against
# the one-process `kdscope study` (docs/studies.md, "Running on Slurm", keeps its last result).
#
# As root, with Debian's slurm-wlm and munge installed (this script installs nothing:
# `apt-get install -y slurm-wlm munge`; the services the packages set up are not used), it
#  1. runs the tiny study of tiny_study.sh (4 cells) in one process (--threads 1 --blas-threads 1);
#  2. brings up, all in a temporary folder: munged as the munge user with a key of
#     `mungekey -c` and its own socket, then slurmctld and slurmd for one node of CPUs=2 with no
#     cgroups (MpiDefault=none, ProctrackType=proctrack/linuxproc, TaskPlugin=task/none,
#     SelectType=select/cons_tres, a cgroup.conf of CgroupPlugin=autodetect and
#     IgnoreSystemd=yes) on two free ports of 127.0.0.1 (so that it runs beside a real Slurm,
#     or beside itself in another checkout);
#  3. writes the study's scripts with `kdscope study --slurm --cpus-per-task 1` (the same
#     threads as step 1) and runs their submit.sh: the teacher job, the array of 4 cells after
#     it, the merge job after the array;
#  4. waits for them (at most TIMEOUT seconds, default 900), checks that every job and array
#     task COMPLETED with exit code 0, and compares the merged summary with step 1's
#     (compare_summaries.py: equal exactly, the same code and seeds on the same kernels);
#  5. stops the daemons it started (by their process ids) and removes the folder (KEEP=1
#     keeps it). Exit 0 passed, 1 failed, 77 skipped (not root, or Slurm or munge missing).
#
# Usage: run_slurm_study.sh KDSCOPE [SOURCE_DIR]   e.g. tests/slurm/run_slurm_study.sh build/release/app/kdscope
set -u
exe=$(readlink -f "${1:?usage: run_slurm_study.sh KDSCOPE [SOURCE_DIR]}")
src=$(readlink -f "${2:-$(dirname "$0")/../..}")
python=${PYTHON:-/usr/bin/python3}
timeout=${TIMEOUT:-900}

skip() { echo "SKIPPED: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "run as root (slurmd runs the jobs as the submitting user, and munged needs its own user)"
for tool in munged mungekey munge slurmctld slurmd sbatch squeue scontrol sinfo; do
  command -v "$tool" > /dev/null || skip "$tool is missing: apt-get install -y slurm-wlm munge"
done
id munge > /dev/null 2>&1 || skip "no munge user (Debian's munge package creates it)"
[ -x "$exe" ] || { echo "FAIL: no kdscope at $exe" >&2; exit 1; }

tmp=$(mktemp -d /tmp/kdscope-slurm.XXXXXX)
chmod 755 "$tmp"
pids=()
munged_pid=""
cleanup() {
  local rc=$?
  if [ -n "${SLURM_CONF:-}" ] && [ ${#pids[@]} -gt 0 ]; then
    scancel --quiet --user=root 2> /dev/null || true
  fi
  for pid in "${pids[@]}"; do
    kill "$pid" 2> /dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2> /dev/null || true
  done
  if [ -n "$munged_pid" ]; then
    kill "$munged_pid" 2> /dev/null || true
    for _ in $(seq 50); do kill -0 "$munged_pid" 2> /dev/null || break; sleep 0.1; done
  fi
  if [ "${KEEP:-0}" = 1 ]; then
    echo "kept $tmp"
  else
    rm -rf "$tmp"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() {
  echo "FAIL: $*" >&2
  for f in "$tmp"/log/*.log "$tmp"/study/array/slurm/logs/*; do
    [ -f "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }
  done
  exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# 1. The study in one process.
. "$src/tests/slurm/tiny_study.sh"
make_tiny_study "$python" "$tmp/study"
t0=$(now)
"$exe" study "$tmp/study/study.json" --out "$tmp/study/local" --threads 1 --blas-threads 1 2> "$tmp/local.log" ||
  fail "the one-process study failed: $(tail -n 5 "$tmp/local.log")"
local_s=$(since "$t0")
echo "one-process study: $local_s s"

# 2. munge, then Slurm.
t0=$(now)
m=$tmp/munge
mkdir -p "$m/etc" "$m/run" "$m/log" "$m/lib"
mungekey -c -k "$m/etc/munge.key" || fail "mungekey -c"
chown -R munge:munge "$m"
chmod 755 "$m" "$m/run"               # the socket's folder: everyone may connect
chmod 700 "$m/etc" "$m/log" "$m/lib"  # munged refuses a key or log others can reach
runuser -u munge -- munged --key-file="$m/etc/munge.key" --socket="$m/run/munge.socket" \
  --pid-file="$m/run/munged.pid" --log-file="$m/log/munged.log" --seed-file="$m/lib/munged.seed" ||
  fail "munged did not start"
munged_pid=$(cat "$m/run/munged.pid")
munge -S "$m/run/munge.socket" -n | unmunge -S "$m/run/munge.socket" > /dev/null || fail "munge round trip"

# Two free ports (the kernel's choice; SLURMCTLD_PORT and SLURMD_PORT override).
read -r free1 free2 < <("$python" -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
ctld_port=${SLURMCTLD_PORT:-$free1}
slurmd_port=${SLURMD_PORT:-$free2}
node=$(hostname -s)
memory=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 / 2 }' /proc/meminfo) # half the RAM, in MB
mkdir -p "$tmp/etc" "$tmp/state" "$tmp/spool" "$tmp/log" "$tmp/run"
cat > "$tmp/etc/slurm.conf" << EOF
ClusterName=kdscope-test
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$m/run/munge.socket
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/run/slurmctld.pid
SlurmdPidFile=$tmp/run/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
NodeName=$node NodeAddr=127.0.0.1 CPUs=2 RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
printf 'CgroupPlugin=autodetect\nIgnoreSystemd=yes\n' > "$tmp/etc/cgroup.conf"
export SLURM_CONF=$tmp/etc/slurm.conf
slurmctld -D -c -f "$SLURM_CONF" > "$tmp/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" > "$tmp/log/slurmd.out" 2>&1 &
pids+=($!)
state=""
for _ in $(seq 120); do
  state=$(sinfo -h -n "$node" -o %t 2> /dev/null || true)
  [ "$state" = idle ] && break
  sleep 0.5
done
[ "$state" = idle ] || fail "the node did not come up (sinfo: '$state')"
bringup_s=$(since "$t0")
echo "Slurm up: $(sinfo -V), node $node idle after $bringup_s s (ports $ctld_port, $slurmd_port)"

# 3. The scripts and their submission.
"$exe" study "$tmp/study/study.json" --out "$tmp/study/array" --slurm --partition debug --cpus-per-task 1 \
  --time 30:00 --mem 1G > "$tmp/howto.txt" || fail "kdscope study --slurm"
cat "$tmp/howto.txt"
t0=$(now)
sh "$tmp/study/array/slurm/submit.sh" > "$tmp/submit.log" || fail "submit.sh: $(cat "$tmp/submit.log")"
cat "$tmp/submit.log"
teacher=$(sed -n 's/^teacher job: //p' "$tmp/submit.log")
cells=$(sed -n 's/^cells: array job \([0-9]*\),.*/\1/p' "$tmp/submit.log")
merge=$(sed -n 's/^merge job: //p' "$tmp/submit.log")
[ -n "$teacher" ] && [ -n "$cells" ] && [ -n "$merge" ] || fail "no job ids in: $(cat "$tmp/submit.log")"

# 4. Wait, then check every job and the summary.
deadline=$(($(date +%s) + timeout))
while [ -n "$(squeue -h -j "$teacher,$cells,$merge" 2> /dev/null)" ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "the jobs did not finish within $timeout s: $(squeue)"
  sleep 1
done
array_s=$(since "$t0")
for job in "$teacher" "$cells" "$merge"; do
  scontrol show job "$job" > "$tmp/job-$job.txt" || fail "scontrol show job $job"
  ok=$(grep -c 'JobState=COMPLETED' "$tmp/job-$job.txt")
  bad=$(grep -E 'JobState=' "$tmp/job-$job.txt" | grep -vc 'JobState=COMPLETED')
  codes=$(grep -o 'ExitCode=[0-9:]*' "$tmp/job-$job.txt" | sort -u | tr '\n' ' ')
  [ "$bad" -eq 0 ] && [ "$codes" = "ExitCode=0:0 " ] || fail "job $job: $(grep -E 'JobState|ExitCode' "$tmp/job-$job.txt")"
  echo "job $job: $ok COMPLETED, $codes"
done
[ "$(grep -c 'JobState=COMPLETED' "$tmp/job-$cells.txt")" -eq 4 ] || fail "the array did not run 4 tasks"
for i in 0 1 2 3; do
  grep -q "kdscope study cell $i on $node" "$tmp/study/array/slurm/logs/cell-$i-$cells.out" ||
    fail "no log of array task $i"
done
echo "array: submit to merged summary in $array_s s"
"$python" "$src/tests/slurm/compare_summaries.py" "$tmp/study/local/study_summary.json" \
  "$tmp/study/array/study_summary.json" --cells 4 || fail "the summaries differ"
echo "RESULT: passed on $(date -u '+%Y-%m-%d %H:%M UTC'), $(sinfo -V): one-process study $local_s s;" \
  "Slurm bring-up $bringup_s s; array (teacher, 4 cells on 2 CPUs, merge) $array_s s; summaries equal"
