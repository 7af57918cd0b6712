#!/usr/bin/env bash
# Checks cmake/run_gtest_suite.sh, the runner every GoogleTest suite goes through in ctest,
# on programs that print what GoogleTest prints and then end in each way that matters.
set -uo pipefail
runner="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/cmake/run_gtest_suite.sh"
passed=0
failed=0
expect() { # expect WANTED_STATUS DESCRIPTION -- PROGRAM...
  local want="$1" what="$2"
  shift 3
  "$runner" -- "$@" >/dev/null 2>&1
  local got=$?
  if [[ $got -eq $want ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $what: runner exited $got, wanted $want"
  fi
}
ok='echo "[==========] 3 tests from 1 test suite ran."; echo "[  PASSED  ] 3 tests."'
expect 0 "a clean pass" -- sh -c "$ok"
expect 1 "a crash after the summary" -- sh -c "$ok; kill -SEGV \$\$"
expect 1 "a non-zero exit after the summary" -- sh -c "$ok; exit 3"
expect 1 "a sanitizer report at exit" -- sh -c "$ok; echo '==123==ERROR: LeakSanitizer: detected memory leaks'"
expect 1 "a UBSan runtime error" -- sh -c "echo 'core/x.cpp:3:5: runtime error: signed integer overflow'; $ok"
expect 1 "a filter that matched nothing" -- sh -c 'echo "[==========] 0 tests from 0 test suites ran."; echo "[  PASSED  ] 0 tests."'
expect 1 "no GoogleTest summary" -- sh -c 'echo hello'
expect 77 "every test skipped" -- sh -c 'echo "[  PASSED  ] 0 tests."; echo "[  SKIPPED ] 2 tests, listed below:"'
expect 0 "some skipped, some passed" -- sh -c 'echo "[  PASSED  ] 1 test."; echo "[  SKIPPED ] 2 tests, listed below:"'
expect 1 "a failed test" -- sh -c 'echo "[  PASSED  ] 1 test."; echo "[  FAILED  ] 1 test, listed below:"; exit 1'
"$runner" --needs-cpu-flag no_such_cpu_flag -- true >/dev/null 2>&1
if [[ $? -eq 77 ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: a missing CPU flag must skip"; fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
