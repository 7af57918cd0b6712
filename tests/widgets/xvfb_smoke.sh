#!/bin/sh
# Smoke test of the real executable: open a small run file in the workbench under Xvfb,
# take a screenshot of the X screen after ~3 s, and check it is not blank.
#
# The screenshot is taken by kdscope itself (KDSCOPE_SCREENSHOT=PATH: QScreen::grabWindow(0)
# reads the root window back from the X server, so it shows what was really drawn on the
# display, then the app saves it and exits). ImageMagick's `import` and x11-apps' `xwd` are
# not installed here. check_screenshot.py counts distinct colours; it is first run on a
# uniform image and must reject it, so the check cannot pass on a blank screen.
#
# usage: xvfb_smoke.sh KDSCOPE TEST_BINARY OUT_DIR
set -eu
kdscope=$1
tests=$2
out=$3
here=$(cd "$(dirname "$0")" && pwd)
python=/usr/bin/python3
[ -x "$python" ] || python=python3

rm -rf "$out"
mkdir -p "$out/home"
"$tests" --write-run "$out/run.h5"

# The checker must fail on a blank screen.
"$python" "$here/check_screenshot.py" --blank "$out/blank.ppm"
if "$python" "$here/check_screenshot.py" "$out/blank.ppm" >/dev/null 2>&1; then
  echo "xvfb_smoke: the checker accepted a blank screenshot" >&2
  exit 1
fi

# A private HOME keeps the user's settings and recent files out of it.
HOME="$out/home" XDG_CONFIG_HOME="$out/home/.config" QT_QPA_PLATFORM=xcb \
  KDSCOPE_SCREENSHOT="$out/screen.ppm" \
  timeout 60 xvfb-run -a -s "-screen 0 1280x800x24" "$kdscope" "$out/run.h5"

"$python" "$here/check_screenshot.py" "$out/screen.ppm" "$out/screen.png"
echo "xvfb_smoke: ok ($out/screen.png)"
