#!/bin/sh
# Data-parallel training launched by PyTorch's own launcher (issue #16, docs/distributed.md):
# `python3 -m torch.distributed.run --nproc_per_node 2 --no_python kdscope run ...` starts two
# ranks that read the environment torchrun sets (its agent hosts the store:
# TORCHELASTIC_USE_AGENT_STORE) and train the same models as one process, within the tolerance
# of tests/app/distributed.sh (which says why).
#
# Usage: distributed_torchrun.sh KDSCOPE PYTHON SOURCE_DIR WORK_DIR
set -eu
exe=$1
python=$2
src=$3
work=$4
tol=1e-5
rm -rf "$work"
mkdir -p "$work"
if ! "$python" -c "import torch.distributed.run" 2>/dev/null; then
  echo "SKIP: $python has no torch.distributed.run (python3-torch)"
  exit 77
fi
"$python" "$src/tests/app/distributed_job.py" 7 > "$work/job.json"
"$exe" run "$work/job.json" --out "$work/one" --threads 1
# --redirects 1 --tee 2: Debian 12's torchrun (PyTorch 1.13 on Python 3.11) fails with its
# default "--redirects 0" (AttributeError in to_map: Python 3.11's IntFlag iteration skips
# Std.NONE); any explicit non-zero setting works. Here: stdout to torchrun's log folder,
# stderr to the log and the console.
OMP_NUM_THREADS=1 timeout 300 "$python" -m torch.distributed.run --nproc_per_node 2 --redirects 1 --tee 2 --no_python \
  "$exe" run "$work/job.json" --out "$work/torchrun" --threads 1
"$python" "$src/tests/app/compare_runs.py" "$work/one/run.h5" "$work/torchrun/run.h5" $tol
"$python" -c "import sys, h5py; sys.exit(0 if int(h5py.File(sys.argv[1], 'r').attrs['world_size']) == 2 else 1)" \
  "$work/torchrun/run.h5"
