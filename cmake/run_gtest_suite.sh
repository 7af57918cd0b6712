#!/usr/bin/env bash
# run_gtest_suite.sh [--needs-cpu-flag FLAG] -- PROGRAM ARGS...
#
# Runs one GoogleTest suite for ctest and decides its outcome from the exit code AND the
# output (cmake/KdscopeTestSuites.cmake). ctest's PASS_REGULAR_EXPRESSION ignores the exit
# code, so a crash after the summary or a sanitizer report at exit used to pass; here:
#   - a non-zero exit, a signal, or a sanitizer report anywhere in the output fails;
#   - a run in which no test passed and none was skipped fails (a filter that matched
#     nothing makes GoogleTest exit 0);
#   - a run in which every test skipped (GTEST_SKIP with its reason) exits 77, which ctest
#     reports as skipped (SKIP_RETURN_CODE), not as passed or failed.
# --needs-cpu-flag FLAG: exit 77 (skipped, with the reason) when /proc/cpuinfo lacks FLAG;
# the kernel-variant runs use it, since forcing a kernel the CPU lacks would die of SIGILL.
set -uo pipefail

while [[ $# -gt 0 && "$1" != "--" ]]; do
  case "$1" in
    --needs-cpu-flag)
      if ! grep -qw -- "$2" /proc/cpuinfo; then
        echo "SKIPPED: this CPU has no '$2', which the kernel variant of this run needs"
        exit 77
      fi
      shift 2
      ;;
    *) echo "run_gtest_suite.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[[ "${1:-}" == "--" ]] && shift
if [[ $# -eq 0 ]]; then
  echo "run_gtest_suite.sh: no program given" >&2
  exit 2
fi

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
"$@" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}

if [[ $status -ne 0 ]]; then
  if [[ $status -gt 128 ]]; then
    echo "FAILED: the test program died of signal $((status - 128))"
  else
    echo "FAILED: the test program exited with status $status"
  fi
  exit 1
fi
if grep -Eq '^(==[0-9]+==ERROR: |SUMMARY: (Address|Leak|Thread|Memory|UndefinedBehavior)Sanitizer|.*: runtime error: )' "$out"; then
  echo "FAILED: a sanitizer reported an error (see above)"
  exit 1
fi
passed="$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -n 1)"
skipped="$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$out" | tail -n 1)"
if [[ -z "$passed" ]]; then
  echo "FAILED: no GoogleTest summary in the output"
  exit 1
fi
if [[ "$passed" -eq 0 ]]; then
  if [[ -n "$skipped" && "$skipped" -gt 0 ]]; then
    echo "SKIPPED: every test of this run skipped (reasons above)"
    exit 77
  fi
  echo "FAILED: the filter matched no test"
  exit 1
fi
exit 0
