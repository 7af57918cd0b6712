#!/bin/sh
# The `kdscope` command (app/launcher/launcher.cpp) starts the program with
# OMP_WAIT_POLICY=PASSIVE and LibTorch loads once. libgomp prints its settings each time it
# loads when OMP_DISPLAY_ENV=verbose (GCC 12's libgomp, Debian 12): one block per start of
# the program, and GOMP_SPINCOUNT '0' is PASSIVE's (300000 when no policy is set).
#
# Usage: launcher.sh KDSCOPE WORK_DIR BUILD_DIR
set -eu
exe=$1
work=$2
build=$3
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. No policy chosen: one start, PASSIVE, and the program's own output.
env -u OMP_WAIT_POLICY OMP_DISPLAY_ENV=verbose "$exe" --version >"$work/out1" 2>"$work/err1"
[ "$(grep -c 'GOMP_SPINCOUNT = ' "$work/err1")" = 1 ] || { cat "$work/err1" >&2; fail "libgomp loaded more than once (or never) through the command"; }
grep -q "GOMP_SPINCOUNT = '0'" "$work/err1" || { cat "$work/err1" >&2; fail "the command did not start the program with OMP_WAIT_POLICY=PASSIVE"; }
grep -q "OMP_WAIT_POLICY = 'PASSIVE'" "$work/err1" || fail "no PASSIVE wait policy in libgomp's settings"
grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+' "$work/out1" || fail "--version printed no version through the command"

# 2. The user's choice stands.
OMP_WAIT_POLICY=ACTIVE OMP_DISPLAY_ENV=verbose "$exe" --version >/dev/null 2>"$work/err2"
[ "$(grep -c 'GOMP_SPINCOUNT = ' "$work/err2")" = 1 ] || fail "libgomp loaded more than once with a policy set"
grep -q "OMP_WAIT_POLICY = 'ACTIVE'" "$work/err2" || { cat "$work/err2" >&2; fail "the user's OMP_WAIT_POLICY=ACTIVE was not kept"; }

# 3. The program started directly, no policy chosen: it restarts itself once with PASSIVE.
program="$(dirname "$exe")/libexec/kdscope-program"
[ -x "$program" ] || fail "no program at $program"
env -u OMP_WAIT_POLICY OMP_DISPLAY_ENV=verbose "$program" --version >/dev/null 2>"$work/err3"
[ "$(grep -c 'GOMP_SPINCOUNT = ' "$work/err3")" = 2 ] || { cat "$work/err3" >&2; fail "the program started directly did not restart once"; }
[ "$(grep 'GOMP_SPINCOUNT = ' "$work/err3" | tail -n 1)" = "  GOMP_SPINCOUNT = '0'" ] || fail "the restarted program is not PASSIVE"

# 4. A command without its program says what is missing (exit 127), and runs nothing.
cp "$exe" "$work/kdscope"
status=0
"$work/kdscope" --version >"$work/out4" 2>"$work/err4" || status=$?
[ "$status" = 127 ] || fail "a command without its program exited $status, not 127"
grep -q "the program is missing: neither $work/libexec/kdscope-program nor" "$work/err4" || { cat "$work/err4" >&2; fail "no clear error for a missing program"; }
[ ! -s "$work/out4" ] || fail "a command without its program printed to stdout"
# 5. Installed (`cmake --install` into a scratch prefix): the command finds the program where
# CMAKE_INSTALL_LIBEXECDIR put it, relative to CMAKE_INSTALL_BINDIR, and starts it once.
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; fail "cmake --install"; }
installed="$(find "$work/prefix" -type f -name kdscope-program | head -n 1)"
[ -x "$installed" ] || { cat "$work/install.log" >&2; fail "cmake --install put no program under $work/prefix"; }
command="$(find "$work/prefix" -type f -name kdscope | head -n 1)"
[ -x "$command" ] || { cat "$work/install.log" >&2; fail "cmake --install put no command under $work/prefix"; }
env -u OMP_WAIT_POLICY OMP_DISPLAY_ENV=verbose "$command" --version >"$work/out5" 2>"$work/err5" || { cat "$work/err5" >&2; fail "the installed command did not start the program"; }
[ "$(grep -c 'GOMP_SPINCOUNT = ' "$work/err5")" = 1 ] || fail "the installed command did not start the program once"
cmp -s "$work/out1" "$work/out5" || fail "the installed command printed another version"
echo "launcher: 5 checks passed"
