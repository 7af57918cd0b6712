# Sourced by run_standin_study.sh and run_slurm_study.sh: writes the tiny study both run,
# WORK/study.json over a tiny polarity corpus in WORK/data (laid out like the Debian package
# the real data comes from, docs/data.md): a transformer teacher of 2 layers and 4 cells,
# teacher_epoch {1, final} x lambda {0.2, 0.8}, so the cells load both the final teacher and
# its epoch-1 checkpoint. A cell takes a few seconds. A fifth of the labels are flipped, so
# the accuracies are not all 1 and differ between cells.
#
#   make_tiny_study PYTHON WORK
make_tiny_study() {
  local python=$1 work=$2
  mkdir -p "$work/data"
  "$python" - "$work/data" <<'PY'
import os, random, sys
d = os.path.join(sys.argv[1], "python3-pattern/usr/share/doc/python3-pattern/test/corpora")
os.makedirs(d, exist_ok=True)
rng = random.Random(3)
good = ["good", "great", "fine", "lovely", "superb"]
bad = ["bad", "awful", "dull", "poor", "boring"]
filler = ["the", "film", "was", "a", "plot", "and", "acting"]
with open(os.path.join(d, "polarity-en-pang&lee2.csv"), "w", encoding="utf-8") as out:
    for i in range(160):
        positive = i % 2 == 0
        words = [rng.choice((good if positive else bad) if w % 3 == 1 else filler) for w in range(8)]
        label = positive if rng.random() >= 0.2 else not positive  # a fifth mislabelled: no model is perfect
        out.write('"%s","%s"\n' % ("1" if label else "-1", " ".join(words)))
PY
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
