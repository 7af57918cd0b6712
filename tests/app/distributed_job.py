"""Writes the tiny data-parallel test job (tests/app/distributed*.sh) as JSON on stdout.

Usage: distributed_job.py BATCH_SIZE [EPOCHS]

A vector task of 120 train examples (synthetic_hierarchy: 4 classes x 40, 75 % train), an MLP
teacher and two students, all without dropout (a rank's dropout masks differ from one
process's), so that data-parallel and one-process training compute the same sums in another
order. With batch 7 and 2 ranks every global batch is split 4 + 3 (uneven shards) and the
last batch of an epoch is short. Students: "kd" reads the teacher cache (built sharded by
rank), "hidden" runs the teacher on its shard every step (an intermediate term).
"""
import json
import sys

batch = int(sys.argv[1])
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
# fp32, not the default "auto" (bf16 on a CPU with AVX512_BF16): the tests compare data-parallel
# and one-process training to 1e-5, float32 reassociation; bf16 products round far above that.
training = {"epochs": epochs, "batch_size": batch, "lr": 0.003, "precision": "fp32"}
job = {
    "name": "distributed-test", "seed": 5,
    "tasks": [{"name": "synthetic_hierarchy", "super_classes": 2, "classes_per_super": 2, "dim": 8,
               "examples_per_class": 40}],
    "teacher": {"architecture": {"type": "mlp", "hidden": [16, 16], "dropout": 0.0}, "training": training},
    "students": [
        {"name": "kd", "architecture": {"type": "mlp", "hidden": [8], "dropout": 0.0}, "training": training,
         "objective": {"lambda": 0.5, "temperature": 2.0}},
        {"name": "hidden", "architecture": {"type": "mlp", "hidden": [8], "dropout": 0.0}, "training": training,
         "objective": {"lambda": 0.5, "temperature": 2.0, "hidden_mse": 0.5}},
    ],
    "recording": {"log_every": 1},
    "analyze": False,
}
json.dump(job, sys.stdout, indent=1)
