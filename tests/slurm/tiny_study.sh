# Sourced by run_standin_study.sh and run_slurm_study.sh: writes the tiny study both run,
# WORK/study.json over a tiny polarity corpus in WORK/data (laid out like the Debian package
# the real data comes from, docs/data.md): a transformer teacher of 2 layers and 4 cells,
# teacher_epoch {1, final} x lambda {0.2, 0.8}, so the cells load both the final teacher and
# its epoch-1 checkpoint. A cell takes a few seconds. A fifth of the labels are flipped, so
# the accuracies are not all 1 and differ between cells.
#
#   make_tiny_study PYTHON WORK   (with $src set to the source tree)
make_tiny_study() {
  local python=$1 work=$2
  mkdir -p "$work/data"
  "$python" "$src/tests/app/make_tiny_polarity.py" "$work/data" --flip 0.2
  cat > "$work/study.json" <<JSON
{
  "name": "tiny-array",
  "seed": 5,
  "data_dir": "data",
  "tasks": [{"name": "polarity", "max_len": 12, "min_freq": 1}],
  "teacher": {"architecture": {"layers": 2, "heads": 2, "width": 16, "ffn": 32, "dropout": 0.0},
              "training": {"epochs": 2, "batch_size": 16, "lr": 0.003}},
  "student": {"architecture": {"layers": 1, "heads": 2, "width": 8, "ffn": 16, "dropout": 0.0},
              "training": {"epochs": 2, "batch_size": 16, "lr": 0.003},
              "objective": {"temperature": 2.0}},
  "grid": {"lambda": [0.2, 0.8], "teacher_epoch": [1, 0]},
  "recording": {"attention_examples": 2, "log_every": 2}
}
JSON
}
