#!/usr/bin/env python3
"""Plain h5py write of the arrays bench_recording wrote (its raw .f32 files), with the chunk
shapes and compression of KDScope's file (read from it), streamed in the same 128-row
blocks, then flushed and fsynced as KDScope's writer does; and once more as a single write
of each whole array. Prints one JSON line per mode.

Usage: /usr/bin/python3 bench/recording_h5py.py OUT_DIR EXAMPLES [repeats]
"""
import json
import os
import sys
import time

import h5py
import numpy as np

out, n = sys.argv[1], int(sys.argv[2])
repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
BLOCK = 128

with h5py.File(os.path.join(out, "kdscope.h5"), "r") as ref:
    model = ref["tasks/bench/models/teacher/eval"]
    layout = {name: (model[name].shape, model[name].chunks) for name in ("logits", "hidden", "attention")}

arrays = {name: np.fromfile(os.path.join(out, f"{name}.f32"), dtype=np.float32).reshape(shape)
          for name, (shape, _) in layout.items()}
raw = sum(a.nbytes for a in arrays.values())


def write(path, streamed):
    start = time.perf_counter()
    cpu_start = time.process_time()
    with h5py.File(path, "w", libver=("earliest", "v108")) as f:
        datasets = {name: f.create_dataset(f"tasks/bench/models/teacher/eval/{name}", shape=shape, dtype="f4",
                                           chunks=chunks, shuffle=True, compression="gzip", compression_opts=4,
                                           fillvalue=np.nan)
                    for name, (shape, chunks) in layout.items()}
        if streamed:
            for begin in range(0, n, BLOCK):
                end = min(n, begin + BLOCK)
                datasets["logits"][begin:end] = arrays["logits"][begin:end]
                datasets["hidden"][begin:end] = arrays["hidden"][begin:end]
                if begin < arrays["attention"].shape[0]:
                    keep = min(end, arrays["attention"].shape[0])
                    datasets["attention"][begin:keep] = arrays["attention"][begin:keep]
        else:
            for name, data in arrays.items():
                datasets[name][...] = data
        f.flush()
        os.fsync(f.id.get_vfd_handle())
    return time.perf_counter() - start, time.process_time() - cpu_start


for streamed in (True, False):
    path = os.path.join(out, "h5py.h5")
    timings = [write(path, streamed) for _ in range(repeats)]
    wall = min(t[0] for t in timings)
    cpu = min(t[1] for t in timings)
    print(json.dumps({"writer": "h5py " + ("128-row blocks" if streamed else "whole arrays"), "examples": n,
                      "raw_bytes": raw, "seconds": round(wall, 4), "cpu_seconds": round(cpu, 4),
                      "mb_per_s": round(raw / wall / 1e6, 1), "cpu_mb_per_s": round(raw / cpu / 1e6, 1),
                      "file_bytes": os.path.getsize(path)}))
