#!/bin/sh
# Data-parallel bench (bench/README.md, "Data-parallel training"): 1 process x 2 threads
# against 2 processes x 1 thread, allreduce time and bytes per step, and a speed-up model.
# Usage: bench/run-distributed-bench.sh [BUILD_DIR] [REPEATS]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
exec /usr/bin/python3 "$root/bench/distributed_bench.py" "$build/app/kdscope" --repeats "${2:-3}"
