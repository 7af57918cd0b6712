#!/bin/bash
# A local stand-in for Slurm's sbatch, for CI where no Slurm runs (tests/slurm/run_standin_study.sh
# puts it on the PATH as `sbatch`). It runs the submitted script at once, in the foreground, as
# Slurm's batch step would: with the script's #SBATCH lines read the way sbatch reads them (up to
# the first line that is neither a comment nor blank), its output in the --output file (the %j,
# %A, %a, %x and %% patterns filled in), the submitting environment exported, and SLURM_JOB_ID,
# SLURM_CPUS_PER_TASK, SLURM_JOB_NAME and, for an --array script, each array task in turn with
# SLURM_ARRAY_JOB_ID and SLURM_ARRAY_TASK_ID. A job with --dependency=afterok:ID[:ID...] runs only
# if every job it names succeeded (an array job: every task); otherwise it never runs, as Slurm
# would leave it pending or, with --kill-on-invalid-dep=yes, cancel it.
#
# Understands the options the scripts of `kdscope study --slurm` and their submit.sh use:
# --parsable, --dependency=afterok:..., --kill-on-invalid-dep=yes|no, --array=..., and on the
# command line or in #SBATCH lines --output, --job-name, --cpus-per-task, --array (other
# options are accepted and ignored). State (job ids and exit codes) lives in $SBATCH_STANDIN_STATE.
set -u
state=${SBATCH_STANDIN_STATE:?set SBATCH_STANDIN_STATE to a folder for the job table of the stand-in}
mkdir -p "$state"

parsable=0
dependency=""
cli_array="" cli_output="" cli_name="" cli_cpus=""
script=""
while [ $# -gt 0 ]; do
  case "$1" in
    --parsable) parsable=1 ;;
    --dependency=*) dependency=${1#--dependency=} ;;
    --kill-on-invalid-dep=*) ;;
    --array=*) cli_array=${1#--array=} ;;
    --output=*) cli_output=${1#--output=} ;;
    --job-name=*) cli_name=${1#--job-name=} ;;
    --cpus-per-task=*) cli_cpus=${1#--cpus-per-task=} ;;
    --*=*) ;;
    -*) echo "sbatch (stand-in): option '$1' is not understood here" >&2; exit 1 ;;
    *) script=$1; shift; break ;;
  esac
  shift
done
if [ -z "$script" ] || [ ! -r "$script" ]; then
  echo "sbatch (stand-in): no readable batch script given" >&2
  exit 1
fi

# The #SBATCH lines, as sbatch reads them: from the top, up to the first command.
array="" output="" name="" cpus=""
while IFS= read -r line; do
  case "$line" in
    '#SBATCH '*)
      opt=${line#\#SBATCH }
      opt=${opt%%[[:space:]]*}
      case "$opt" in
        --array=*) array=${opt#--array=} ;;
        --output=*) output=${opt#--output=} ;;
        --job-name=*) name=${opt#--job-name=} ;;
        --cpus-per-task=*) cpus=${opt#--cpus-per-task=} ;;
      esac ;;
    '#'* | '') ;;
    *) break ;;
  esac
done < "$script"
# The command line overrides the script, as with sbatch.
array=${cli_array:-$array}
output=${cli_output:-$output}
name=${cli_name:-${name:-$(basename "$script")}}
cpus=${cli_cpus:-${cpus:-1}}

next=$(cat "$state/next_id" 2>/dev/null || echo 1000)
job=$next
echo $((next + 1)) > "$state/next_id"

report() {
  if [ "$parsable" = 1 ]; then echo "$job"; else echo "Submitted batch job $job"; fi
}

# afterok: every named job must have succeeded.
if [ -n "$dependency" ]; then
  case "$dependency" in
    afterok:*) ;;
    *) echo "sbatch (stand-in): only afterok dependencies are understood, got '$dependency'" >&2; exit 1 ;;
  esac
  for dep in $(echo "${dependency#afterok:}" | tr ':' ' '); do
    if [ "$(cat "$state/$dep.status" 2>/dev/null)" != "0" ]; then
      echo "DependencyNeverSatisfied:$dep" > "$state/$job.status"
      report
      exit 0
    fi
  done
fi

# Array task ids: "0-3", "0-7%2" (the limit does not matter when tasks run one by one), "1,3,5".
tasks=""
if [ -n "$array" ]; then
  spec=${array%%%*}
  for part in $(echo "$spec" | tr ',' ' '); do
    case "$part" in
      *-*) tasks="$tasks $(seq "${part%-*}" "${part#*-}")" ;;
      *) tasks="$tasks $part" ;;
    esac
  done
fi

run_one() { # TASK_ID (empty: not an array)
  local task=$1 out jobid
  jobid=$job
  out=${output:-slurm-%j.out}
  if [ -n "$task" ]; then
    jobid="${job}_$task"
    [ -n "$output" ] || out="slurm-%A_%a.out"
  fi
  out=${out//%%/$'\001'}
  out=${out//%j/$job}
  out=${out//%A/$job}
  out=${out//%a/$task}
  out=${out//%x/$name}
  out=${out//$'\001'/%}
  (
    export SLURM_JOB_ID=$job SLURM_JOB_NAME=$name SLURM_CPUS_PER_TASK=$cpus SLURM_SUBMIT_DIR=$PWD
    if [ -n "$task" ]; then
      export SLURM_ARRAY_JOB_ID=$job SLURM_ARRAY_TASK_ID=$task
    fi
    exec bash "$script"
  ) > "$out" 2>&1 < /dev/null
  local rc=$?
  echo "$jobid $rc" >> "$state/$job.tasks"
  return $rc
}

status=0
if [ -n "$array" ]; then
  for t in $tasks; do
    run_one "$t" || status=1
  done
else
  run_one "" || status=1
fi
echo "$status" > "$state/$job.status"
report
exit 0
