#!/bin/sh
# End-to-end check of the run file with h5py: runs two small real jobs with the kdscope
# executable (a vector job with the default recording; a text job with attention, token-level
# hidden states and float16 activations), then checks each run file against the format with
# tests/python/check_run_file.py, which opens it with h5py and checks every fixed path, shape,
# type and attribute.
#
# Usage: run_and_check.sh KDSCOPE PYTHON SOURCE_DIR WORK_DIR
set -eu
exe=$1
python=$2
src=$3
work=$4
rm -rf "$work"
mkdir -p "$work/data"

# A tiny polarity corpus laid out like the fetched Debian package (docs/data.md).
"$python" "$src/tests/app/make_tiny_polarity.py" "$work/data"

cat > "$work/vector.json" <<'JSON'
{"name": "python-check-vector", "seed": 2,
 "tasks": [{"name": "synthetic_hierarchy", "super_classes": 2, "classes_per_super": 2, "dim": 8,
            "examples_per_class": 40}],
 "teacher": {"architecture": {"type": "mlp", "hidden": [16]}, "training": {"epochs": 2, "batch_size": 16}},
 "students": [{"name": "kd", "architecture": {"type": "mlp", "hidden": [8]},
               "training": {"epochs": 2, "batch_size": 16}, "objective": {"lambda": 0.5, "temperature": 2.0}}],
 "recording": {"log_every": 2}}
JSON

cat > "$work/text.json" <<JSON
{"name": "python-check-text", "seed": 2, "data_dir": "$work/data",
 "tasks": [{"name": "polarity", "max_len": 12, "min_freq": 1}],
 "teacher": {"architecture": {"type": "transformer", "layers": 2, "heads": 2, "width": 16, "ffn": 32},
             "training": {"epochs": 2, "batch_size": 16}},
 "students": [{"name": "small", "architecture": {"type": "transformer", "layers": 1, "heads": 2, "width": 16,
                                                  "ffn": 32},
               "training": {"epochs": 2, "batch_size": 16}, "objective": {"lambda": 0.5}}],
 "recording": {"attention_examples": 4, "token_hidden_examples": 3, "float16": true}}
JSON

status=0
for job in vector text; do
  "$exe" run "$work/$job.json" --out "$work/$job" --threads 1
  "$python" "$src/tests/python/check_run_file.py" "$work/$job/run.h5" || status=1
done
exit $status
